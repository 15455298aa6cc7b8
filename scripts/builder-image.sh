#!/usr/bin/env bash
# Makes a local Go builder image (vhost-gen-go:local) from this machine's Go toolchain, for the
# Dockerfile's GO_IMAGE: there is no registry to pull golang from. Skips when it exists.
set -euo pipefail
IMAGE=${1:-vhost-gen-go:local}
docker image inspect "$IMAGE" >/dev/null 2>&1 && exit 0
GOROOT=$(go env GOROOT)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/etc/ssl/certs" "$root/tmp"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
tar -C "$(dirname "$GOROOT")" -c --transform "s,^$(basename "$GOROOT"),usr/local/go," "$(basename "$GOROOT")" -C "$root" etc tmp |
  docker import --change 'ENV PATH=/usr/local/go/bin:/usr/bin:/bin' --change 'ENV HOME=/root' \
    --change 'ENV GOPATH=/root/go' --change 'ENV GOTOOLCHAIN=local' - "$IMAGE" >/dev/null
echo "builder image $IMAGE made from $GOROOT" >&2
