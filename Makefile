# anchorage — see README.md. Every target works on a fresh Debian machine
# after .ci/run's package installs (or `make deps`).
GO      ?= go
BIN     := bin
TAGS    :=
GOFLAGS ?=
export GOFLAGS

.PHONY: all build test demo demo-ha lint bench deps clean dist dist-check

all: build

build:
	$(GO) build -trimpath -o $(BIN)/ ./cmd/anchorage-ca ./cmd/anchorage ./internal/cmd/awsdemo

# The whole suite: unit, end-to-end (real servers on 127.0.0.1, real bbolt
# files) and CLI testscripts; openssl and the rest come from `make deps`.
test: deps lint
	$(GO) test -count=1 -timeout 20m ./...

demo: deps build
	./scripts/demo.sh

# Two CA replicas on one private PostgreSQL, kill -9 of the one that pushes
# CRLs, the survivor taking over; see scripts/demo-ha.sh.
demo-ha: deps build
	./scripts/demo-ha.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Enrollment against the step-ca peer (scripts/stepca, run in the same
# session; BENCH_STEPCA=0 skips it), on bbolt and on PostgreSQL with 1-3
# replicas (BENCH_PG=0 skips it), as ratios; then the Go benchmarks of the
# enrollment path and CRL builds. See scripts/bench.sh for the knobs
# (BENCH_QUICK=1: about two minutes; RAH=path: credential-process against a
# built aws_signing_helper).
bench:
	./scripts/bench.sh

# .deb packages (anchorage-ca, anchorage) with systemd units and man pages,
# built with nfpm; dist-check installs them here and verifies (CI, as root).
dist:
	./scripts/dist.sh

dist-check:
	./scripts/dist-check.sh

deps:
	./.ci/install-deps

clean:
	rm -rf $(BIN) demo demo-ha dist/out
