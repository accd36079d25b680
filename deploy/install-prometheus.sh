#!/usr/bin/env bash
# Install Prometheus (server and promtool) from Debian's `prometheus` package when either is
# missing. Idempotent: prints what it finds and does nothing more when both are on PATH.
# Needs root (or sudo) and Debian/Ubuntu's apt-get; anywhere else it says what to install.
set -euo pipefail

. "$(dirname "$0")/apt-install.sh"

if have prometheus && have promtool; then
    echo "install-prometheus: found $(command -v prometheus) and $(command -v promtool): nothing to do"
    prometheus --version 2>&1 | head -n 1
    exit 0
fi

apt_install install-prometheus prometheus \
    "install Prometheus >= 2.40 so that 'prometheus' and 'promtool' are on PATH"
# The package starts a system service when an init system runs; the tests start their own
# server on a free port, so that service is neither needed nor touched.
have prometheus && have promtool || {
    echo "install-prometheus: the prometheus package installed but prometheus/promtool are not on PATH" >&2
    exit 1
}
echo "install-prometheus: installed $(command -v prometheus) and $(command -v promtool)"
prometheus --version 2>&1 | head -n 1
