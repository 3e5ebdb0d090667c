#!/usr/bin/env bash
# Brings up what the test suite needs beyond Python and Node: `tools/ensure.sh redis|valgrind|chromium`.
#
# Each tool is used when present. When it is missing and we run as root (CI, containers),
# Debian's package is installed; otherwise the script stops and prints the one command to run.
set -euo pipefail

apt_updated=0
need_package() {  # need_package COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "error: '$1' is missing; install it with: sudo apt-get install -y $2" >&2
        exit 1
    fi
    echo "installing Debian's $2 ..."
    if [ "$apt_updated" = 0 ]; then
        apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

ensure_redis() {
    need_package redis-server redis-server
    if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
        return 0
    fi
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --logfile "${TMPDIR:-/tmp}/rotary-test-redis.log"
    for _ in $(seq 50); do
        redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "error: redis-server did not answer on 127.0.0.1:6379" >&2
    exit 1
}

for what in "$@"; do
    case "$what" in
        redis) ensure_redis ;;
        valgrind) need_package valgrind valgrind ;;
        chromium) need_package chromium chromium ;;
        *) echo "usage: $0 redis|valgrind|chromium ..." >&2; exit 2 ;;
    esac
done
