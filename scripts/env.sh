#!/usr/bin/env bash
# Installs and starts what the tests and the demo need (shared/ENVIRONMENT.md), idempotently:
# Docker Engine (dockerd started by hand: no init system here) in single-node Swarm mode, nginx,
# HAProxy, wrk, etcd (installed only: each test starts its own), Chromium (headless, for the
# dashboard's browser test).
# Starts only what is not already running, and never stops anything.
set -euo pipefail

need_pkgs=()
command -v dockerd >/dev/null || need_pkgs+=(docker.io)
command -v nginx >/dev/null || need_pkgs+=(nginx)
command -v wrk >/dev/null || need_pkgs+=(wrk)
command -v haproxy >/dev/null || need_pkgs+=(haproxy)
# etcd 3.4: the tests start their own etcd processes; the package's service is never started.
command -v etcd >/dev/null || need_pkgs+=(etcd-server)
command -v etcdctl >/dev/null || need_pkgs+=(etcd-client)
# Chromium, run headless by integration/dashboard_test.go; chromedriver for WebDriver clients.
command -v chromium >/dev/null || need_pkgs+=(chromium)
command -v chromedriver >/dev/null || need_pkgs+=(chromium-driver)
if ((${#need_pkgs[@]})); then
  echo "env: installing ${need_pkgs[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# The docker CLI on the PATH may be newer than the engine; pin it to what the engine speaks.
export DOCKER_API_VERSION=${DOCKER_API_VERSION:-1.41}
if ! docker info >/dev/null 2>&1; then
  echo "env: starting dockerd (log: /var/log/vhost-gen-dockerd.log)" >&2
  nohup dockerd >/var/log/vhost-gen-dockerd.log 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "env: dockerd did not start; see /var/log/vhost-gen-dockerd.log" >&2; exit 1; }
fi
# A single-node Swarm for the Swarm tests; it survives dockerd restarts, so look first.
if [ "$(docker info -f '{{.Swarm.LocalNodeState}}')" != "active" ]; then
  echo "env: docker swarm init --advertise-addr 127.0.0.1" >&2
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null
fi
echo "env: ready (docker $(docker version -f "{{.Server.Version}}"), $(nginx -v 2>&1), $(haproxy -v | head -1), $(etcd --version | head -1))" >&2
