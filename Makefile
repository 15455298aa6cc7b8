# vhost-gen: `make demo` runs it against the real engine and nginx; `make test` runs every test.
# Both install and start what they need (scripts/env.sh), idempotently.
SHELL := /bin/bash
GO ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# A count, not a duration: Go 1.26's fuzz coordinator can fail a duration-bound run with a bare
# "context deadline exceeded" and no crasher (golang/go#75804, fixed in Go 1.27).
FUZZTIME ?= 100000x

.PHONY: build env lint unit fuzz integration test bench bench-table bench-short demo demo-stop

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

# Every fuzz target for FUZZLONG each, as a duration (10 minutes: hours for all of them, so it is
# not part of `make test`); FUZZTARGET (a regexp) picks targets: make fuzz-long FUZZLONG=20s
# FUZZTARGET=FuzzHostBounds. Go 1.26's coordinator can end a duration-bound run with a bare
# "context deadline exceeded" having found nothing (golang/go#75804, see FUZZTIME): such a run
# passes when its output says so, names no failing input and no file appeared under
# testdata/fuzz/<target>; anything else fails. (A count calibrated to 10 minutes would not be:
# execs per second vary a hundredfold between targets and machines.)
FUZZLONG ?= 10m
FUZZTARGET ?= .
# FUZZFLAGS passes more flags to go test, e.g. FUZZFLAGS='-parallel 1' for one fuzzing worker.
FUZZFLAGS ?=
.PHONY: fuzz-long
fuzz-long:
	@log=$$(mktemp); trap 'rm -f "$$log"' EXIT; \
	grep -rl --include='*_test.go' '^func Fuzz' internal cmd | sort | while read -r f; do \
	  d=$$(dirname $$f); \
	  for fn in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' "$$f" | cut -d' ' -f2 | grep -E -- '$(FUZZTARGET)'); do \
	    echo "fuzz-long $$fn ($$d, $(FUZZLONG))"; \
	    before=$$(ls "$$d/testdata/fuzz/$$fn" 2>/dev/null); \
	    $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZLONG) $(FUZZFLAGS) "./$$d" 2>&1 | tee "$$log"; \
	    [ "$${PIPESTATUS[0]}" -eq 0 ] && continue; \
	    if grep -Eq '^[[:space:]]+context deadline exceeded$$' "$$log" && ! grep -q 'Failing input written' "$$log" && \
	      [ "$$(ls "$$d/testdata/fuzz/$$fn" 2>/dev/null)" = "$$before" ]; then \
	      echo "fuzz-long $$fn: a bare \"context deadline exceeded\" and no failing input: the coordinator's race (golang/go#75804), not a finding"; \
	    else \
	      echo "fuzz-long $$fn: FAILED"; exit 1; \
	    fi; \
	  done || exit 1; \
	done

integration: env
	$(GO) test -count=1 -parallel 4 -timeout 20m ./integration/ ./integration/enginesim/

test: env lint unit fuzz integration bench-short

# Unit benchmarks (per-event path, build + render), then convergence through real nginx and
# HAProxy (20 starts each), on a Swarm (10 scale-ups), the Swarm poll's API cost, the zero-drop
# figures (the test's log), through etcd (start to first 200, publisher kill, writes, a gateway
# at 10,000 published workloads), and HTTPS (HAProxy's certificate load through the runtime API
# and by a reload; TLS handshakes per second through each proxy).
bench: env
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...
	$(GO) test -run '^$$' -bench '^BenchmarkStartToFirst200$$' -benchtime 20x ./integration/
	$(GO) test -run '^$$' -bench SwarmScaleToFirst200 -benchtime 10x ./integration/
	$(GO) test -run '^$$' -bench SwarmPollCost -benchtime 1x ./integration/
	$(GO) test -count=1 -run TestZeroDrop -v ./integration/ | grep -E 'zero-drop|abrupt|^(ok|FAIL|---)'
	$(GO) test -run '^$$' -bench 'BenchmarkEtcd' -benchtime 5x ./integration/
	$(GO) test -run '^$$' -bench 'BenchmarkHAProxyCertLoad/^(runtime-api|reload)$$' -benchtime 20x ./integration/
	$(GO) test -run '^$$' -bench 'BenchmarkHAProxyCertLoad/^vg-' -benchtime 5x ./integration/
	$(GO) test -run '^$$' -bench 'BenchmarkTLSHandshakes' -benchtime 2000x ./integration/

# One table (the README's performance section): against the engine simulator at N = 100, 1,000
# and 10,000, and against the real engine at N = 100, through HAProxy (integration/benchtable).
bench-table: env
	$(GO) run ./integration/benchtable

# The same table at small N with few samples, in `make test` so that it cannot rot: it fails when
# a figure cannot be measured (no apply, a workload not routed, a host that never answers, no
# HAProxy or dockerd), never on a timing.
bench-short: env
	$(GO) run ./integration/benchtable -short

demo:
	bash scripts/demo.sh

demo-stop:
	bash scripts/demo.sh stop
