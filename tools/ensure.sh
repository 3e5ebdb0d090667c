#!/usr/bin/env bash
# Brings up what the test suite needs beyond Python and Node:
# `tools/ensure.sh redis|valgrind|chromium|centrifugo`.
#
# Each tool is used when present. When it is missing and we run as root (CI, containers),
# Debian's package is installed; otherwise the script stops and prints the one command to run.
# `centrifugo` builds the reference server of the differential tests from its Go module, once,
# into a cache outside the repository; without Go it only warns, unless CI=true or
# ROTARY_NEED_CENTRIFUGO=1 (`make centrifugo`), where a missing Go is an error.
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

CENTRIFUGO_VERSION=6.9.1
ensure_centrifugo() {
    local bin="${ROTARY_CENTRIFUGO_BIN:-$HOME/.cache/rotary/bin/centrifugo}"
    local go
    go="$(command -v go || true)"
    if [ -z "$go" ] && [ -x /usr/local/go/bin/go ]; then go=/usr/local/go/bin/go; fi
    # `go install` leaves the binary's own version at 0.0.0: the module version is in its
    # build information. Without Go an existing binary is taken as it is.
    if [ -x "$bin" ] && { [ -z "$go" ] ||
        "$go" version -m "$bin" 2>/dev/null | grep -q "v$CENTRIFUGO_VERSION"; }; then
        return 0
    fi
    if [ -z "$go" ]; then
        if [ "${CI:-}" = true ] || [ "${ROTARY_NEED_CENTRIFUGO:-}" = 1 ]; then
            echo "error: Go is missing: building Centrifugo (differential tests) needs it" >&2
            exit 1
        fi
        echo "note: Go is missing: the differential tests against Centrifugo will be skipped" >&2
        return 0
    fi
    local dir start
    dir="$(dirname "$bin")"
    mkdir -p "$dir"
    echo "building Centrifugo v$CENTRIFUGO_VERSION into $dir (once; minutes on two cores) ..."
    start=$(date +%s)
    if ! GOBIN="$dir" "$go" install "github.com/centrifugal/centrifugo/v6@v$CENTRIFUGO_VERSION"; then
        if [ "${CI:-}" = true ] || [ "${ROTARY_NEED_CENTRIFUGO:-}" = 1 ]; then
            echo "error: building Centrifugo failed" >&2
            exit 1
        fi
        echo "note: building Centrifugo failed: the differential tests will be skipped" >&2
        return 0
    fi
    if [ "$dir/centrifugo" != "$bin" ]; then mv "$dir/centrifugo" "$bin"; fi
    echo "built Centrifugo in $(( $(date +%s) - start )) s"
}

for what in "$@"; do
    case "$what" in
        redis) ensure_redis ;;
        valgrind) need_package valgrind valgrind ;;
        chromium) need_package chromium chromium ;;
        centrifugo) ensure_centrifugo ;;
        *) echo "usage: $0 redis|valgrind|chromium|centrifugo ..." >&2; exit 2 ;;
    esac
done
