#!/usr/bin/env bash
# Installs the real SRS peers the interoperability tests and benchmarks run against, from
# Debian's packages: Mail::SRS (Perl), postsrsd (C daemon, Postfix TCP tables), pysrs (Python).
set -euo pipefail
bash "$(dirname "$0")/apt-install.sh" libmail-srs-perl postsrsd python3-srs
