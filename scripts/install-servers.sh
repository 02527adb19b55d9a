#!/usr/bin/env bash
# Installs the servers the provider tests start on loopback, from Debian's packages: dnsmasq
# (a real DNS server for the resolver and authentication tests), rspamd (the spam filter) and
# redis-server (the shared rate limiter).
# The tests start their own instances on free ports with temporary configuration; the packaged
# services are not used. Safe to run again.
set -euo pipefail

packages=(dnsmasq-base rspamd redis-server)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "Test servers already installed: ${packages[*]}"
  exit 0
fi

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "Installing ${missing[*]} from Debian"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
