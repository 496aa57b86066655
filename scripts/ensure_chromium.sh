#!/usr/bin/env bash
# The browser tests drive Debian's Chromium; install it when we may (root, apt), else say why not.
set -u
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "Installing Debian's chromium for the browser tests..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq chromium chromium-driver >/dev/null \
    || echo "Could not install chromium; the browser tests will be skipped with that reason."
else
  echo "No /usr/bin/chromium and no root to install it: the browser tests will be skipped."
fi
exit 0
