#!/usr/bin/env bash
# Installs what the browser tests of `pidgin serve` drive: Debian's headless Chromium and
# its chromedriver. Does nothing when both are already there. Needs root (CI runs as root)
# or passwordless sudo; without either it says so and exits 0, so the browser tests skip
# locally (under CI=true they fail instead, so a missing browser is never silent there).
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "install-browser: not root; install chromium and chromium-driver to run the browser tests" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-browser: no apt-get; install Chromium and chromedriver by hand" >&2
  exit 0
fi
echo "install-browser: installing chromium and chromium-driver" >&2
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
chromium --version >&2
