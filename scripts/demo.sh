#!/usr/bin/env bash
# The demo: vhost-gen watching the real Docker Engine and driving a real nginx on 127.0.0.1:8080.
# `scripts/demo.sh` (re)starts it; `scripts/demo.sh stop` stops it and removes its containers.
# Only containers labelled vhost-gen.demo are routed, so the demo leaves other containers alone.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=${DEMO_DIR:-/tmp/vhost-gen-demo}
PORT=${DEMO_PORT:-8080}
ADMIN=${DEMO_ADMIN:-127.0.0.1:9180}
IMAGE=vhost-gen-echo:demo

stop() {
  if [ -f "$DEMO/vhost-gen.pid" ]; then kill "$(cat "$DEMO/vhost-gen.pid")" 2>/dev/null || true; rm -f "$DEMO/vhost-gen.pid"; fi
  if [ -f "$DEMO/nginx.pid" ]; then nginx -c "$DEMO/nginx.conf" -p "$DEMO/" -e "$DEMO/error.log" -s quit 2>/dev/null || true; fi
  ids=$(docker ps -aq --filter label=vhost-gen.demo 2>/dev/null || true)
  [ -z "$ids" ] || docker rm -f $ids >/dev/null
}

if [ "${1:-}" = stop ]; then stop; echo "demo stopped"; exit 0; fi

bash scripts/env.sh
stop
mkdir -p "$DEMO/conf.d" "$DEMO/rootfs/bin"
echo "demo: building vhost-gen and the echo backend image ($IMAGE, FROM scratch)"
go build -o "$DEMO/vhost-gen" ./cmd/vhost-gen
CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$DEMO/rootfs/echo" ./integration/echo
ln -f "$DEMO/rootfs/echo" "$DEMO/rootfs/bin/sh"
tar -C "$DEMO/rootfs" -c . | docker import --change 'ENTRYPOINT ["/echo"]' - "$IMAGE" >/dev/null

cat >"$DEMO/nginx.conf" <<CONF
pid $DEMO/nginx.pid;
error_log $DEMO/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    include $DEMO/conf.d/*.conf;
}
CONF
nginx -c "$DEMO/nginx.conf" -p "$DEMO/" -e "$DEMO/error.log"

"$DEMO/vhost-gen" watch --out "$DEMO/conf.d/vhost-gen.conf" --listen "127.0.0.1:$PORT" \
  --reload-pidfile "$DEMO/nginx.pid" --proxy-networks bridge --label-filter vhost-gen.demo \
  --admin-addr "$ADMIN" >"$DEMO/vhost-gen.log" 2>&1 &
echo $! >"$DEMO/vhost-gen.pid"
sleep 0.5
if ! kill -0 "$(cat "$DEMO/vhost-gen.pid")" 2>/dev/null; then
  echo "demo: vhost-gen exited at once:" >&2
  cat "$DEMO/vhost-gen.log" >&2
  exit 1
fi

docker run -d --name demo-shop-1 --label vhost-gen.demo -e ECHO_NAME=shop-1 -e VIRTUAL_HOST=shop.example.com "$IMAGE" >/dev/null
docker run -d --name demo-shop-2 --label vhost-gen.demo -e ECHO_NAME=shop-2 -e VIRTUAL_HOST=shop.example.com "$IMAGE" >/dev/null
docker run -d --name demo-blog --label vhost-gen.demo -e ECHO_NAME=blog --label VIRTUAL_HOST=blog.example.com "$IMAGE" >/dev/null
docker run -d --name demo-broken --label vhost-gen.demo -e ECHO_NAME=broken -e 'VIRTUAL_HOST=evil.example.com; include /etc/passwd' "$IMAGE" >/dev/null

for _ in $(seq 1 50); do
  curl -sf -H 'Host: blog.example.com' "http://127.0.0.1:$PORT/" >/dev/null 2>&1 && break
  sleep 0.1
done
echo
for h in shop.example.com shop.example.com blog.example.com unknown.example.com; do
  printf '$ curl -H "Host: %s" http://127.0.0.1:%s/\n  ' "$h" "$PORT"
  curl -s -o /tmp/vhost-gen-demo.body -w '%{http_code} ' -H "Host: $h" "http://127.0.0.1:$PORT/"
  head -c 120 /tmp/vhost-gen-demo.body | head -1
  echo
done
echo
echo '$ vhost-gen routes --label-filter vhost-gen.demo --proxy-networks bridge'
"$DEMO/vhost-gen" routes --label-filter vhost-gen.demo --proxy-networks bridge
cat <<MSG

The demo keeps running: nginx on 127.0.0.1:$PORT, vhost-gen's log in $DEMO/vhost-gen.log,
its config in $DEMO/conf.d/vhost-gen.conf, and http://$ADMIN/routes in a browser.
Add a site:  docker run -d --label vhost-gen.demo -e VIRTUAL_HOST=new.example.com $IMAGE
             curl -H 'Host: new.example.com' http://127.0.0.1:$PORT/
Stop it:     make demo-stop
MSG
