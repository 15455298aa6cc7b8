#!/usr/bin/env bash
# Makes the edge gateway's base image (vhost-gen-base:bookworm): Debian bookworm, minimal, with
# nginx-light and HAProxy, from debootstrap + docker import, since there is no registry to pull a
# base from. Skips when the image exists. About a minute on a fresh machine.
set -euo pipefail
IMAGE=${1:-vhost-gen-base:bookworm}
docker image inspect "$IMAGE" >/dev/null 2>&1 && exit 0
command -v debootstrap >/dev/null || {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
echo "base-image: debootstrap bookworm with nginx-light and haproxy (about a minute)" >&2
debootstrap --variant=minbase --include=nginx-light,haproxy bookworm "$root" >/dev/null
# The packages' own default site and config would clash with vhost-gen's (a second default
# server on :80; a haproxy.cfg that is not vhost-gen's).
rm -f "$root/etc/nginx/sites-enabled/default" "$root/etc/haproxy/haproxy.cfg"
rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin "$root/usr/share/doc" "$root/usr/share/man"
tar -C "$root" -c . | docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$IMAGE" >/dev/null
echo "base-image: $IMAGE made" >&2
