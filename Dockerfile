# vhost-gen, built in stages. The base images are build arguments: the test machines have no
# registry and make their bases locally (scripts/builder-image.sh: a Go image from the host's
# toolchain; scripts/base-image.sh: Debian bookworm with nginx-light and HAProxy, by debootstrap).
# Every RUN is in exec form, so the builder needs no shell.
#
#   docker build -t vhost-gen-gateway .                        # the edge gateway (default)
#   docker build --target vhost-gen -t vhost-gen .             # vhost-gen alone, FROM scratch
ARG GO_IMAGE=golang:1.26-bookworm
ARG BASE_IMAGE=vhost-gen-base:bookworm

FROM ${GO_IMAGE} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-mod=mod GOCACHE=/tmp/gocache
COPY go.mod go.sum ./
RUN ["go", "mod", "download"]
COPY cmd ./cmd
COPY internal ./internal
COPY templates ./templates
RUN ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", "/out/vhost-gen", "./cmd/vhost-gen"]

# vhost-gen alone: for a proxy in another container (--reload-container, --check-cmd none).
FROM scratch AS vhost-gen
COPY --from=build /out/vhost-gen /usr/local/bin/vhost-gen
ENTRYPOINT ["/usr/local/bin/vhost-gen"]
CMD ["watch", "--help"]

# nginx-proxy's separate-containers mode, in place of its docker-gen image: nginx runs in its own
# container with the label below and shares /etc/nginx/conf.d (and certs, vhost.d, htpasswd) with
# this one; vhost-gen checks each config with nginx -t in that container before it signals it.
#   docker build --target dockergen -t vhost-gen-dockergen .
FROM vhost-gen AS dockergen
ENV NGINX_CONTAINER_LABEL=com.github.nginx-proxy.nginx-proxy.nginx
CMD ["watch", "--proxy", "nginx", "--out", "/etc/nginx/conf.d/default.conf"]

# The edge gateway: vhost-gen is the main process; it renders, checks with the real proxy, starts
# and supervises it. nginx by default; for HAProxy run
#   watch --supervise --proxy haproxy --out /etc/haproxy/haproxy.cfg --haproxy-socket /run/haproxy-admin.sock
FROM ${BASE_IMAGE} AS gateway
COPY --from=build /out/vhost-gen /usr/local/bin/vhost-gen
# nginx-proxy's mounts, read at the same paths: the certificates, vhost.d snippets, htpasswd files, network_internal.conf, and the
# Docker socket at /tmp/docker.sock when it is not at /var/run/docker.sock.
RUN ["mkdir", "-p", "/run/haproxy", "/etc/nginx/certs", "/etc/nginx/vhost.d", "/etc/nginx/htpasswd"]
# nginx's logs go to the container's, as nginx-proxy's do.
RUN ["ln", "-sf", "/dev/stdout", "/var/log/nginx/access.log"]
RUN ["ln", "-sf", "/dev/stderr", "/var/log/nginx/error.log"]
# nginx-proxy's connection limits, not Debian's 768.
RUN ["sed", "-i", "-e", "s/worker_connections [0-9]*;/worker_connections 10240;/", "-e", "s|^pid /run/nginx.pid;|&\\nworker_rlimit_nofile 20480;|", "/etc/nginx/nginx.conf"]
# HTTPS is on, as nginx-proxy's is (VHOST_GEN_CERTS_DIR= turns it off, e.g. on the host network);
# ACME is off, as nginx-proxy leaves it to acme-companion (VHOST_GEN_ACME=true: vhost-gen orders).
ENV VHOST_GEN_CERTS_DIR=/etc/nginx/certs VHOST_GEN_ACME=false
EXPOSE 80
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/vhost-gen"]
CMD ["watch", "--supervise", "--proxy", "nginx", "--out", "/etc/nginx/conf.d/vhost-gen.conf"]
