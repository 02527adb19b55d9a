#!/usr/bin/env bash
# Everything the test suite needs from Debian: the SRS peers and the servers the provider tests
# start on loopback. Safe to run again.
set -euo pipefail
here="$(dirname "$0")"
bash "$here/install-peers.sh"
bash "$here/install-servers.sh"
bash "$here/install-postfix.sh"
