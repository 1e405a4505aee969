# kubo-highload: build, run and test a Kubo with the highload plugin.
# `make test` is what CI runs (see .ci/run).

SHELL     := /bin/bash
GO        ?= go
BIN       := build/bin
IPFS      := $(BIN)/ipfs
IPFS_STOCK:= $(BIN)/ipfs-stock
IPFS_SRC  := $(BIN)/ipfs-from-source
IPFS_PATH ?= $(HOME)/.ipfs
# Our packages that do not link all of Kubo: cheap enough for the race detector.
# The component libraries import boxo/libp2p/go-datastore but never Kubo.
RACE_PKGS := ./plugin/hlconfig/... ./plugin/hlstate/... ./bench/internal/... ./bench/workloads/datastore/... \
	./bench/floor/... ./datastore/... ./health/... ./autoscale/... ./autotune/... ./connmgr/... ./exchange/... ./tlsbatch/...

.PHONY: all build build-stock kubo-from-source run test vet unit integration sharness fuzz clean FORCE

all: build

# go build is incremental; FORCE lets it decide what is stale.
$(IPFS): FORCE
	$(GO) build -o $@ ./build/kubo

$(IPFS_STOCK): FORCE
	$(GO) build -o $@ ./build/stock

build: $(IPFS)

build-stock: $(IPFS_STOCK)

# Kubo's own tree from the module cache + our preload_list, built in-tree.
kubo-from-source:
	bash build/from-source.sh $(IPFS_SRC)

# Builds if needed, creates a highload repo if $(IPFS_PATH) has none, and
# runs the daemon in the foreground.
run: build
	@if [ ! -f "$(IPFS_PATH)/config" ]; then \
		echo "creating a repo at $(IPFS_PATH) with --profile=highload"; \
		IPFS_PATH="$(IPFS_PATH)" $(IPFS) init --profile=highload; \
	fi
	IPFS_PATH="$(IPFS_PATH)" $(IPFS) daemon

test: vet unit integration sharness bench-quick

# staticcheck, pinned (docs/dependencies.md): it found a recovery error
# that a scoped err hid from its check (SA4006), which go vet does not look for.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

vet:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# Every package runs once: RACE_PKGS under -race, the rest (which link Kubo)
# without it. test/integration needs the binaries and runs in `integration`.
unit:
	$(GO) test -race $(RACE_PKGS)
	$(GO) test $$($(GO) list ./... | grep -v /test/integration | grep -vxF -f <($(GO) list $(RACE_PKGS)))

# A real ipfs-cluster-service for the connmgr cluster-source test, built from
# its own module (tools/cluster, go.sum committed).
include tools/cluster/cluster.mk

integration: build build-stock cluster
	HIGHLOAD_IPFS_BIN=$(CURDIR)/$(IPFS) HIGHLOAD_IPFS_STOCK_BIN=$(CURDIR)/$(IPFS_STOCK) \
		HIGHLOAD_CLUSTER_BIN=$(CURDIR)/$(CLUSTER_BIN) $(GO) test -count=1 -timeout 25m ./test/integration/...

sharness: build build-stock kubo-from-source
	$(MAKE) -C test/sharness

.PHONY: bench bench-quick

# Stock Kubo against ours, side by side (docs/benchmarks.md). Extra flags:
# make bench BENCH_FLAGS="-w W1,W2 -rounds 3". Results in bench/results/.
BENCH_FLAGS ?=
bench: build build-stock
	$(GO) run ./bench $(BENCH_FLAGS)

# Every workload at a tiny size, once: keeps the harness working (no speed
# assertion). Results in bench/results/quick/, apart from a full run's.
bench-quick: build build-stock
	$(GO) run ./bench -quick -out bench/results/quick

# Each fuzzer for FUZZTIME (their seed corpora also run in `unit`).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./plugin/hlconfig/
	$(GO) test -run '^$$' -fuzz '^FuzzParseSpec$$' -fuzztime $(FUZZTIME) ./datastore/tiered/
	$(GO) test -run '^$$' -fuzz '^FuzzFrame$$' -fuzztime $(FUZZTIME) ./datastore/tiered/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRecord$$' -fuzztime $(FUZZTIME) ./datastore/blocklog/
	$(GO) test -run '^$$' -fuzz '^FuzzDagpbLinks$$' -fuzztime $(FUZZTIME) ./exchange/

clean:
	rm -rf $(BIN) build/from-source/work test/sharness/test-results "test/sharness/trash directory."*
