#!/usr/bin/env bash
# Start a Docker engine on this machine, so `sam local invoke` can run.
#
# Does nothing when `docker info` already succeeds. Otherwise installs Debian's
# docker.io package when dockerd is missing, starts dockerd in the background
# and waits until `docker info` succeeds. dockerd listens only on its Unix socket
# (/var/run/docker.sock); no TCP listener and no registry settings are added.
#
# dockerd starts without its default bridge (docker0), without iptables rules
# and without turning on IP forwarding, so the host's network settings stay
# as they were. Lambda containers run in the host's network namespace (see
# scripts/sam_host_network.py) and reach what a host process reaches. Any
# other container gets only its own loopback.
#
# Environment:
#   DOCKERD_LOG           dockerd output (default /tmp/dockerd.log)
#   DOCKERD_WAIT_SECONDS  how long to wait for the engine (default 60)
set -euo pipefail

log_file="${DOCKERD_LOG:-/tmp/dockerd.log}"
wait_seconds="${DOCKERD_WAIT_SECONDS:-60}"

say() { printf 'docker-engine: %s\n' "$*" >&2; }

engine_responds() { docker info >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_responds; then
    say "engine already running ($(docker version --format '{{.Server.Version}}'))"
    exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        say "dockerd is missing and installing docker.io needs root; run as root or install docker.io"
        exit 1
    fi
    say "dockerd is missing; installing Debian package docker.io"
    # An exit code of 101 from policy-rc.d makes the package scripts skip
    # starting the service. This script starts dockerd itself, and the
    # machine may have no init system.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends docker.io iptables >&2
fi

if pgrep -x dockerd >/dev/null 2>&1; then
    say "dockerd is running but does not respond yet; waiting for it"
else
    say "starting dockerd in the background, log in $log_file"
    # dockerd must not inherit file descriptors beyond stdin, stdout and
    # stderr. An inherited pipe (from make, CI or a `| tee`) would stay open
    # as long as dockerd runs, and the reader would wait for it forever.
    # setsid detaches dockerd from this shell's session, so it keeps running
    # after this script and its caller end.
    (
        for fd_path in /proc/self/fd/*; do
            fd="${fd_path##*/}"
            if [ "$fd" -gt 2 ]; then
                eval "exec $fd>&-"
            fi
        done
        exec setsid dockerd --bridge=none --iptables=false --ip-forward=false >"$log_file" 2>&1 </dev/null
    ) &
fi

deadline=$((SECONDS + wait_seconds))
until engine_responds; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        say "dockerd did not respond within ${wait_seconds}s; last lines of $log_file:"
        tail -n 20 "$log_file" >&2 || true
        say "fix the error above, or raise DOCKERD_WAIT_SECONDS"
        exit 1
    fi
    sleep 1
done
say "engine ready ($(docker version --format '{{.Server.Version}}'))"
