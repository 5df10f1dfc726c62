#!/usr/bin/env bash
# Installs PostgreSQL's server binaries (Debian's `postgresql` package) when they are
# absent, for the DuckLake tests and benchmark (tools/pgcluster.py starts a throwaway
# server from them). Does not start or enable any service. Idempotent; needs root (or sudo).
#
#   tools/ci/install-postgres.sh          # from .ci/run, before the lake tests
set -euo pipefail

have_server() {
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null
}

if have_server; then
  echo "install-postgres: PostgreSQL server binaries already present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# The package's post-install creates a cluster and may try to start it; in a container
# without an init system that start fails harmlessly, and policy-rc.d keeps it off.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
have_server || { echo "install-postgres: postgresql installed but initdb not found" >&2; exit 1; }
echo "install-postgres: installed $(ls -d /usr/lib/postgresql/*/bin | tail -n 1)"
