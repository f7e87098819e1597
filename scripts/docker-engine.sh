#!/usr/bin/env bash
# Make a Docker engine answer on this machine, so `sam local invoke` can run.
#
# Does nothing when `docker info` already succeeds. Otherwise installs Debian's
# docker.io package when dockerd is missing, starts dockerd in the background
# and waits until it answers. dockerd listens only on its Unix socket
# (/var/run/docker.sock); no TCP listener and no registry settings are added.
#
# Environment:
#   DOCKERD_LOG           dockerd output (default /tmp/dockerd.log)
#   DOCKERD_WAIT_SECONDS  how long to wait for the engine (default 60)
set -euo pipefail

log_file="${DOCKERD_LOG:-/tmp/dockerd.log}"
wait_seconds="${DOCKERD_WAIT_SECONDS:-60}"

say() { printf 'docker-engine: %s\n' "$*" >&2; }

engine_answers() { docker info >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_answers; then
    say "engine already running ($(docker version --format '{{.Server.Version}}'))"
    exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        say "dockerd is missing and installing docker.io needs root; run as root or install docker.io"
        exit 1
    fi
    say "dockerd is missing; installing Debian package docker.io"
    # policy-rc.d exit code 101 tells the package scripts not to start the
    # service, because this script starts dockerd itself and the machine may
    # have no init system.
    policy=/usr/sbin/policy-rc.d
    created_policy=false
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        created_policy=true
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends docker.io iptables >&2
    if [ "$created_policy" = true ]; then
        rm -f "$policy"
    fi
fi

if pgrep -x dockerd >/dev/null 2>&1; then
    say "dockerd is running but does not answer yet; waiting for it"
else
    say "starting dockerd in the background, log in $log_file"
    # setsid detaches dockerd from this shell, so it keeps running after
    # make or CI moves on and survives the end of this script.
    setsid dockerd >"$log_file" 2>&1 </dev/null &
fi

deadline=$((SECONDS + wait_seconds))
until engine_answers; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        say "dockerd did not answer within ${wait_seconds}s; last lines of $log_file:"
        tail -n 20 "$log_file" >&2 || true
        say "fix the error above, or raise DOCKERD_WAIT_SECONDS"
        exit 1
    fi
    sleep 1
done
say "engine ready ($(docker version --format '{{.Server.Version}}'))"
