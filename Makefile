# vhost-gen: `make demo` runs it against the real engine and nginx; `make test` runs every test.
# Both install and start what they need (scripts/env.sh), idempotently.
SHELL := /bin/bash
GO ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# A count, not a duration: Go 1.26's fuzz coordinator can fail a duration-bound run with a bare
# "context deadline exceeded" and no crasher (golang/go#75804, fixed in Go 1.27).
FUZZTIME ?= 100000x

.PHONY: build env lint unit fuzz integration test bench demo demo-stop

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/vhost-gen ./cmd/vhost-gen

env:
	bash scripts/env.sh

lint:
	@bad=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$bad" ]; then echo "not gofmt-clean: $$bad"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

unit:
	$(GO) test -race -count=1 ./cmd/... ./internal/... ./templates/...

# Every fuzz target, briefly: go test -fuzz takes one target in one package at a time.
fuzz:
	@grep -rl --include='*_test.go' '^func Fuzz' internal cmd | while read -r f; do \
	  for fn in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' "$$f" | cut -d' ' -f2); do \
	    echo "fuzz $$fn ($$(dirname $$f), $(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) "./$$(dirname $$f)" || exit 1; \
	  done; \
	done

integration: env
	$(GO) test -count=1 -parallel 4 -timeout 20m ./integration/

test: env lint unit fuzz integration

# Unit benchmarks (per-event path, build + render), then convergence through real nginx and
# HAProxy (20 starts each), on a Swarm (10 scale-ups), the Swarm poll's API cost, the zero-drop
# figures (the test's log), and through etcd (start to first 200, publisher kill, writes, a gateway
# at 10,000 published workloads).
bench: env
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...
	$(GO) test -run '^$$' -bench '^BenchmarkStartToFirst200$$' -benchtime 20x ./integration/
	$(GO) test -run '^$$' -bench SwarmScaleToFirst200 -benchtime 10x ./integration/
	$(GO) test -run '^$$' -bench SwarmPollCost -benchtime 1x ./integration/
	$(GO) test -count=1 -run TestZeroDrop -v ./integration/ | grep -E 'zero-drop|abrupt|^(ok|FAIL|---)'
	$(GO) test -run '^$$' -bench 'BenchmarkEtcd' -benchtime 5x ./integration/

demo:
	bash scripts/demo.sh

demo-stop:
	bash scripts/demo.sh stop
