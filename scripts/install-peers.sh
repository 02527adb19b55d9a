#!/usr/bin/env bash
# Installs the real SRS peers the interoperability tests and benchmarks run against, from
# Debian's packages: Mail::SRS (Perl), postsrsd (C daemon, Postfix TCP tables), pysrs (Python).
# Safe to run again: packages already present are left alone.
set -euo pipefail

packages=(libmail-srs-perl postsrsd python3-srs)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "SRS peers already installed: ${packages[*]}"
  exit 0
fi

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "Installing ${missing[*]} from Debian"
"${sudo[@]}" apt-get update -qq
# Packaged daemons must not start on their default ports: the tests start their own.
DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
