#!/usr/bin/env bash
# The tests drive some of Debian's programs (Chromium, nginx, promtool, redis-sentinel,
# libfaketime): install what is missing when we may (root, apt), else say why not. A test
# whose program is missing skips with that reason.
set -u
list="$(dirname "$0")/debian-packages.txt"
missing=()
while read -r marker packages; do
  case "$marker" in ''|'#'*) continue ;; esac
  [ -e "$marker" ] || missing+=($packages)
done < "$list"
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "Installing Debian's ${missing[*]} for the tests..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq "${missing[@]}" >/dev/null \
    || echo "Could not install ${missing[*]}; the tests that need them will be skipped with that reason."
else
  echo "Missing ${missing[*]} and no root to install them: the tests that need them will be skipped."
fi
exit 0
