# Builds a real IPFS Cluster peer for the connmgr cluster-source test
# (test/integration/connmgr_cluster_test.go). Its own module (tools/cluster)
# keeps ipfs-cluster's dependencies out of the plugin's go.mod; go.sum is
# committed, so the build verifies every hash without the checksum
# database (see docs/dependencies.md for why that matters here).
#
#   make -f tools/cluster/cluster.mk cluster      (from the repository root)
#
# or `include tools/cluster/cluster.mk` in the Makefile and `make cluster`.

GO          ?= go
CLUSTER_BIN := build/bin/ipfs-cluster-service

.PHONY: cluster $(CLUSTER_BIN)
cluster: $(CLUSTER_BIN)

# Phony: go build is incremental and decides what is stale (it does not
# relink an up-to-date binary).
$(CLUSTER_BIN):
	cd tools/cluster && GOFLAGS="$(GOFLAGS) -mod=readonly" $(GO) build -o ../../$(CLUSTER_BIN) \
		github.com/ipfs-cluster/ipfs-cluster/cmd/ipfs-cluster-service
