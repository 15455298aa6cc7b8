# vhost-gen, built in two stages. The base images are build arguments: the test machines have no
# registry and import their bases locally (scripts/builder-image.sh makes a Go image from the
# host's toolchain). Every RUN is in exec form, so the builder needs no shell.
#
#   docker build --build-arg GO_IMAGE=golang:1.26 --build-arg BASE_IMAGE=scratch -t vhost-gen .
ARG GO_IMAGE=golang:1.26-bookworm
ARG BASE_IMAGE=scratch

FROM ${GO_IMAGE} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-mod=mod GOCACHE=/tmp/gocache
COPY go.mod go.sum ./
RUN ["go", "mod", "download"]
COPY cmd ./cmd
COPY internal ./internal
COPY templates ./templates
RUN ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", "/out/vhost-gen", "./cmd/vhost-gen"]

FROM ${BASE_IMAGE}
COPY --from=build /out/vhost-gen /usr/local/bin/vhost-gen
ENTRYPOINT ["/usr/local/bin/vhost-gen"]
CMD ["watch", "--help"]
