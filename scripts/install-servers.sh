#!/usr/bin/env bash
# Installs the servers the provider tests start on loopback, from Debian's packages: dnsmasq
# (a real DNS server for the resolver and authentication tests), rspamd (the spam filter) and
# redis-server (the shared rate limiter). The tests start their own instances on free ports
# with temporary configuration; the packaged services are not used.
set -euo pipefail
bash "$(dirname "$0")/apt-install.sh" dnsmasq-base rspamd redis-server
