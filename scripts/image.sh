#!/usr/bin/env bash
# image.sh - builds tally's container image from the Containerfile with podman or docker
# (`make image`). IMAGE=NAME:TAG names it (default tally:latest). Says clearly why when it
# cannot: no podman or docker, a docker daemon that does not answer, or a failed build (most
# often: no network access to the registry the base images come from).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
IMAGE=${IMAGE:-tally:latest}

if command -v podman >/dev/null 2>&1; then
    tool=podman
elif command -v docker >/dev/null 2>&1; then
    tool=docker
    if ! docker info >/dev/null 2>&1; then
        echo "make image: docker is installed but its daemon does not answer ('docker info' fails):" \
            "start it (or install podman: apt-get install podman), then run 'make image' again" >&2
        exit 1
    fi
else
    echo "make image: neither podman nor docker is installed: install one (apt-get install podman)," \
        "then run 'make image' again" >&2
    exit 1
fi

echo "make image: building $IMAGE with $tool from $ROOT/Containerfile"
if ! "$tool" build -f "$ROOT/Containerfile" -t "$IMAGE" "$ROOT"; then
    echo "make image: '$tool build' failed (see above). It pulls debian:bookworm and" \
        "debian:bookworm-slim from a registry and installs Debian packages in them: without" \
        "network access to those it cannot work." >&2
    exit 1
fi
echo "make image: built $IMAGE. For a cluster: $tool tag $IMAGE REGISTRY/tally:TAG &&" \
    "$tool push REGISTRY/tally:TAG, and set newName/newTag in deploy/k8s (README)"
