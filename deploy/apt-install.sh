#!/usr/bin/env bash
# Shared by deploy/install-*.sh (sourced, not run): `apt_install LABEL PACKAGE WHAT` installs
# one Debian package with apt-get (as root, or through sudo), or says what to install by hand
# (WHAT) where apt-get is missing. `have NAME` tells whether a command is on PATH.

have() { command -v "$1" >/dev/null 2>&1; }

apt_install() {
    local label="$1" package="$2" what="$3" sudo=""
    if ! have apt-get; then
        echo "$label: apt-get is not available; $what" >&2
        return 1
    fi
    if [ "$(id -u)" -ne 0 ]; then
        if have sudo; then
            sudo="sudo"
        else
            echo "$label: need root (or sudo) to run apt-get install $package" >&2
            return 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    echo "$label: running: $sudo apt-get update -q"
    $sudo apt-get update -q
    # --no-install-recommends: the package itself, none of its optional extras
    echo "$label: running: $sudo apt-get install -y -q --no-install-recommends $package"
    $sudo apt-get install -y -q --no-install-recommends "$package"
}
