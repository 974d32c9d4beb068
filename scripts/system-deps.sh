#!/bin/sh
# Installs the Debian packages the end-to-end tests use, when they are missing.
# Needs root (or sudo); does nothing when everything is already there.
set -eu
need=""
nc -h 2>&1 | grep -q 'OpenBSD netcat' || need="$need netcat-openbsd"
command -v tmux >/dev/null 2>&1 || need="$need tmux"
command -v openssl >/dev/null 2>&1 || need="$need openssl"
command -v redis-server >/dev/null 2>&1 || need="$need redis-server"
# `ss` reads each connection's TCP keepalive timer (tests/e2e/test_limits.py).
command -v ss >/dev/null 2>&1 || need="$need iproute2"
command -v chromium >/dev/null 2>&1 || need="$need chromium"
# `systemd-analyze verify` checks contrib/chatd.service; it works without a running systemd.
command -v systemd-analyze >/dev/null 2>&1 || need="$need systemd"
# Fonts for what the page shows: the users write Korean and send emoji; without these
# Chromium draws boxes, and screenshots would not show what people see.
fc-list ':lang=ko' 2>/dev/null | grep -q 'Noto Sans CJK' || need="$need fonts-noto-cjk"
fc-list 2>/dev/null | grep -q 'Noto Color Emoji' || need="$need fonts-noto-color-emoji"
[ -z "$need" ] && exit 0
echo "installing Debian packages:$need"
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
$sudo apt-get install -y -q --no-install-recommends $need >/dev/null 2>&1 || {
    $sudo apt-get update -q >/dev/null
    $sudo apt-get install -y -q --no-install-recommends $need >/dev/null
}
