#!/usr/bin/env bash
# Build a local stand-in for the AWS Lambda Python 3.13 base image, for
# machines that cannot pull public.ecr.aws/lambda/python:3.13-x86_64.
#
# `sam local invoke --skip-pull-image` only needs an image with that tag that
# runs /var/runtime/bootstrap. SAM CLI builds its own image on top of it,
# adding the runtime interface emulator (RIE) from the aws-sam-cli wheel as
# the entrypoint and the built layers under /opt. The RIE starts
# /var/runtime/bootstrap and passes the handler in $_HANDLER.
#
# The stand-in is a Debian trixie root filesystem (Python 3.13) with the
# awslambdaric runtime interface client and boto3 in /var/runtime, because
# the real image ships boto3 and Lambda code may rely on it.
#
# Does nothing when the image exists and carries the label of this recipe.
# A changed recipe (this file or the boto3 pins) builds a new image. The root
# filesystem is kept as a tarball in the cache folder, so a wiped Docker store
# needs only `docker import` again.
#
# Environment:
#   PYTHON                 Python 3.13 that runs pip (default the project's
#                          .venv/bin/python, else python3.13)
#   LAMBDA_BASE_IMAGE      tag to build (default the real image's tag)
#   LAMBDA_BASE_CACHE_DIR  tarball folder (default ~/.cache/skribble-callbacks)
#   DEBIAN_MIRROR          debootstrap mirror (default http://deb.debian.org/debian)
set -euo pipefail

image="${LAMBDA_BASE_IMAGE:-public.ecr.aws/lambda/python:3.13-x86_64}"
cache_dir="${LAMBDA_BASE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/skribble-callbacks}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite=trixie
recipe_label=skribble-callbacks.lambda-base.recipe-sha256

# Runtime interface client and its dependencies, pinned so that a rebuild
# gives the same runtime. boto3 and its dependencies come from the project's
# constraints file, the same versions the tests use.
runtime_requirements=(
    awslambdaric==4.2.2
    simplejson==4.3.0
    snapshot-restore-py==1.0.0
    boto3
)
boto3_packages='^(boto3|botocore|s3transfer|jmespath|python-dateutil|six|urllib3)=='

script_path="$(readlink -f "${BASH_SOURCE[0]}")"
repo_root="$(cd "$(dirname "$script_path")/.." && pwd)"
constraints="$repo_root/requirements/constraints.txt"
if [ -n "${PYTHON:-}" ]; then
    python="$PYTHON"
elif [ -x "$repo_root/.venv/bin/python" ]; then
    python="$repo_root/.venv/bin/python"
else
    python=python3.13
fi

say() { printf 'lambda-base-image: %s\n' "$*" >&2; }

if [ ! -f "$constraints" ]; then
    say "constraints file not found: $constraints"
    exit 1
fi

recipe_hash="$(
    {
        cat "$script_path"
        grep -E "$boto3_packages" "$constraints"
    } | sha256sum | cut -c1-16
)"

if ! docker info >/dev/null 2>&1; then
    say "Docker engine does not answer; run scripts/docker-engine.sh first"
    exit 1
fi

current_hash="$(docker image inspect --format "{{ index .Config.Labels \"$recipe_label\" }}" "$image" 2>/dev/null || true)"
if docker image inspect "$image" >/dev/null 2>&1 \
    && { [ -z "$current_hash" ] || [ "$current_hash" = "<no value>" ]; }; then
    # An image under this tag that this script did not build is AWS's real
    # base image, pulled by SAM on a machine with registry access: keep it.
    say "$image exists and was not built by this script; using it as it is"
    exit 0
fi
if [ "$current_hash" = "$recipe_hash" ]; then
    say "$image is up to date (recipe $recipe_hash)"
    exit 0
fi
if [ -n "$current_hash" ]; then
    say "$image was built from recipe '$current_hash', this recipe is $recipe_hash; rebuilding"
else
    say "$image is missing or was not built by this script; building it (recipe $recipe_hash)"
fi

tarball="$cache_dir/lambda-python3.13-x86_64-$recipe_hash.tar"

build_rootfs() {
    if [ "$(id -u)" -ne 0 ]; then
        say "debootstrap needs root; run this script as root"
        exit 1
    fi
    if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
        say "PYTHON=$python is not Python 3.13; set PYTHON to a Python 3.13 interpreter"
        exit 1
    fi
    if ! command -v debootstrap >/dev/null 2>&1; then
        say "installing Debian package debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2
    fi

    local work rootfs
    work="$(mktemp -d /tmp/lambda-base.XXXXXX)"
    rootfs="$work/rootfs"
    # The trap removes the half-built tree when the script stops on an
    # error, so a failed build leaves nothing behind in /tmp.
    trap 'rm -rf "$work"' EXIT

    say "debootstrap $suite into $rootfs (takes about a minute)"
    debootstrap --variant=minbase --include=python3,ca-certificates \
        "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
        tail -n 20 "$work/debootstrap.log" >&2
        say "debootstrap failed; the lines above are the end of its log"
        exit 1
    }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

    say "installing ${runtime_requirements[*]} into /var/runtime"
    mkdir -p "$rootfs/var/runtime" "$rootfs/var/task" "$rootfs/opt"
    # --platform and --python-version select wheels for the image's
    # CPython 3.13 on x86_64, whatever machine runs this script.
    "$python" -m pip install --quiet --disable-pip-version-check \
        --target "$rootfs/var/runtime" \
        --only-binary=:all: --implementation cp --python-version 3.13 \
        --platform manylinux2014_x86_64 \
        --constraint "$constraints" \
        "${runtime_requirements[@]}"

    # Lambda's search order: function code, then layers, then the runtime's
    # own packages, so a layer's boto3 wins over the runtime's copy.
    cat >"$rootfs/var/runtime/bootstrap" <<'EOF'
#!/bin/sh
# Start the Lambda runtime interface client for the handler that the runtime
# interface emulator passes in $_HANDLER (for example app.lambda_handler).
export PYTHONPATH="/var/task:/opt/python/lib/python3.13/site-packages:/opt/python:/var/runtime${PYTHONPATH:+:$PYTHONPATH}"
exec /usr/bin/python3.13 -m awslambdaric "$_HANDLER"
EOF
    chmod 0755 "$rootfs/var/runtime/bootstrap"

    mkdir -p "$cache_dir"
    rm -f "$cache_dir"/lambda-python3.13-x86_64-*.tar
    say "writing $tarball"
    tar --numeric-owner -C "$rootfs" -cf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"

    rm -rf "$work"
    trap - EXIT
}

if [ -f "$tarball" ]; then
    say "reusing cached root filesystem $tarball"
else
    build_rootfs
fi

old_image_id="$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
say "docker import $tarball as $image"
docker import \
    --change "LABEL $recipe_label=$recipe_hash" \
    --change 'ENV LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime LANG=C.UTF-8 TZ=:/etc/localtime' \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin:/opt/bin' \
    --change 'WORKDIR /var/task' \
    --change 'ENTRYPOINT ["/var/runtime/bootstrap"]' \
    "$tarball" "$image" >/dev/null
if [ -n "$old_image_id" ]; then
    # The import moved the tag, so the old image has no name any more. It stays
    # only while images that SAM CLI built on top of it still exist.
    if docker rmi "$old_image_id" >/dev/null 2>&1; then
        say "removed the previous image $old_image_id"
    fi
fi
say "built $image (recipe $recipe_hash)"
