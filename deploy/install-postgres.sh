#!/usr/bin/env bash
# Install the PostgreSQL server binaries from Debian's `postgresql` package when they are
# missing. The feedback store's integration tests start their own throwaway server from
# /usr/lib/postgresql/<version>/bin (initdb, pg_ctl, postgres) on a free port; they never
# use the cluster the package creates. Idempotent: prints what it finds and does nothing
# more when an initdb is there. Needs root (or sudo) and Debian/Ubuntu's apt-get; anywhere
# else it says what to install.
set -euo pipefail

. "$(dirname "$0")/apt-install.sh"

find_initdb() {
    # the newest version (sort -V), the one the tests pick; empty when there is none
    ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true
}

found="$(find_initdb)"
if [ -n "$found" ]; then
    echo "install-postgres: found $found: nothing to do"
    "$found" --version
    exit 0
fi

apt_install install-postgres postgresql \
    "install the PostgreSQL server (>= 13) as Debian lays it out, under /usr/lib/postgresql"
# The package also creates the `postgres` system user (the tests run the server as that user
# when they run as root) and, where an init system runs, starts a cluster on port 5432; the
# tests start their own server on a free port, so that cluster is neither needed nor touched.
found="$(find_initdb)"
if [ -z "$found" ]; then
    echo "install-postgres: the postgresql package installed but no /usr/lib/postgresql/*/bin/initdb" >&2
    exit 1
fi
echo "install-postgres: installed $found"
"$found" --version
