#!/usr/bin/env bash
# Install Prometheus (server and promtool) from Debian's `prometheus` package when either is
# missing. Idempotent: prints what it finds and does nothing more when both are on PATH.
# Needs root (or sudo) and Debian/Ubuntu's apt-get; anywhere else it says what to install.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

if have prometheus && have promtool; then
    echo "install-prometheus: found $(command -v prometheus) and $(command -v promtool): nothing to do"
    prometheus --version 2>&1 | head -n 1
    exit 0
fi

if ! have apt-get; then
    echo "install-prometheus: prometheus/promtool missing and apt-get is not available;" >&2
    echo "  install Prometheus >= 2.40 so that 'prometheus' and 'promtool' are on PATH" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if have sudo; then
        SUDO="sudo"
    else
        echo "install-prometheus: need root (or sudo) to run apt-get install prometheus" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-prometheus: prometheus/promtool missing; running: $SUDO apt-get update -q"
$SUDO apt-get update -q
# --no-install-recommends: the server and promtool only, no node exporter or web console extras.
echo "install-prometheus: running: $SUDO apt-get install -y -q --no-install-recommends prometheus"
$SUDO apt-get install -y -q --no-install-recommends prometheus
# The package starts a system service when an init system runs; the tests start their own
# server on a free port, so that service is neither needed nor touched.
have prometheus && have promtool || {
    echo "install-prometheus: the prometheus package installed but prometheus/promtool are not on PATH" >&2
    exit 1
}
echo "install-prometheus: installed $(command -v prometheus) and $(command -v promtool)"
prometheus --version 2>&1 | head -n 1
