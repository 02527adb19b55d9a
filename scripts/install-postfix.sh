#!/usr/bin/env bash
# Installs Postfix (and Debian's miltertest) for the Postfix integration tests. Non-interactive:
# debconf is told "No configuration", so the package writes no main.cf and asks nothing. The
# tests run a private instance with their own config_directory and queue on loopback ports; the
# packaged service is stopped if the package started it. Safe to run again.
set -euo pipefail
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo 'postfix postfix/main_mailer_type select No configuration' | "${sudo[@]}" debconf-set-selections
bash "$(dirname "$0")/apt-install.sh" postfix miltertest
# A packaged instance left running would hold port 25 and the default queue: stop it (the
# private instances the tests start are stopped by the tests).
if "${sudo[@]}" postfix status >/dev/null 2>&1; then
  "${sudo[@]}" postfix stop || true
fi
if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
  "${sudo[@]}" systemctl disable --now postfix.service >/dev/null 2>&1 || true
fi
