#!/usr/bin/env bash
#
# Two daemons with the plugin exchange a file over Bitswap on loopback, one of
# them with non-default Bitswap caps; then our Kubo and plain Kubo exchange
# files both ways.

test_description="two-node Bitswap transfer, with the plugin and with plain Kubo"

. "$(dirname "$0")/lib/test-lib.sh"

SIZE=4194304 # 4 MiB

# fetch N CID OUT: node N fetches CID from the network into OUT, bounded.
fetch() {
	hl_ipfs "$1" --timeout=60s cat "$2" >"$3"
}

# not_local N CID: node N does not hold CID's root block yet.
not_local() {
	test_must_fail hl_ipfs "$1" --offline block stat "$2" >/dev/null 2>&1
}

# received_from N M: bytes node N received from node M, by N's ledger.
received_from() {
	hl_ipfs "$1" bitswap ledger "$(hl_peer_id "$2")" |
		sed -n "s/^Bytes received:[[:space:]]*//p" | grep -E "^[0-9]+$"
}

test_expect_success 'init node 0 (caps set) and node 1 (defaults), both with the plugin' '
	hl_init_node 0 &&
	hl_init_node 1 &&
	hl_ipfs 0 config --json Plugins.Plugins.highload.Config \
		"{\"Bitswap\":{\"MaxOutstandingBytesPerPeer\":\"256KiB\",\"TargetMessageSize\":\"64KiB\",\"TaskWorkerCount\":2}}"
'

test_expect_success 'start both daemons' '
	hl_start_daemon 0 &&
	hl_start_daemon 1
'

test_expect_success 'the daemons listen on different loopback ports' '
	hl_api_addr 0 >api0 && hl_api_addr 1 >api1 &&
	! test_cmp api0 api1 &&
	hl_loopback_addr 0 >swarm0 && hl_loopback_addr 1 >swarm1 &&
	! test_cmp swarm0 swarm1
'

test_expect_success 'node 0 applies its caps, node 1 applies none' '
	hl_ipfs 0 stats highload >stats0 &&
	grep -E "^  bitswap +active +applied: MaxOutstandingBytesPerPeer=256KiB, TargetMessageSize=64KiB, TaskWorkerCount=2$" stats0 &&
	hl_ipfs 1 stats highload >stats1 &&
	grep -E "^  bitswap +active +no overrides set" stats1
'

test_expect_success 'connect node 1 to node 0 over loopback' '
	hl_connect 1 0 &&
	hl_ipfs 0 swarm peers >peers0 &&
	grep "^/ip4/127\.0\.0\.1/tcp/[0-9]*/p2p/$(hl_peer_id 1)$" peers0
'

test_expect_success 'node 0 adds a random 4 MiB file' '
	head -c $SIZE /dev/urandom >file0 &&
	test "$(wc -c <file0)" -eq $SIZE &&
	CID0=$(hl_ipfs 0 add -Q file0) &&
	test -n "$CID0" &&
	not_local 1 "$CID0"
'

test_expect_success 'node 1 fetches it from node 0, byte for byte' '
	fetch 1 "$CID0" file0.got &&
	cmp file0 file0.got
'

test_expect_success 'node 1 got the bytes over Bitswap from node 0' '
	hl_ipfs 1 --offline block stat "$CID0" >/dev/null &&
	got=$(received_from 1 0) &&
	echo "node 1 received $got bytes from node 0" &&
	test "$got" -ge $SIZE
'

test_expect_success 'node 1 pins it; node 0 sends a second file the other way' '
	hl_ipfs 1 --timeout=60s pin add "$CID0" &&
	head -c $SIZE /dev/urandom >file1 &&
	CID1=$(hl_ipfs 1 add -Q file1) &&
	not_local 0 "$CID1" &&
	fetch 0 "$CID1" file1.got &&
	cmp file1 file1.got
'

test_expect_success 'stop both daemons' '
	hl_stop_daemon 0 &&
	hl_stop_daemon 1
'

# --- plain Kubo and ours ---------------------------------------------------

# The root Makefile's sharness target builds ipfs-stock: its absence is a
# failure here, not a reason to skip.
test_expect_success 'ipfs-stock exists and is executable' '
	if ! test -x "$HIGHLOAD_IPFS_STOCK_BIN"; then
		hl_diag "$HIGHLOAD_IPFS_STOCK_BIN is missing or not executable:" \
			"build it with make build-stock at the repo root"
		false
	fi
'

test_expect_success STOCK_BIN 'init node 2 (ours) and node 3 (plain Kubo)' '
	hl_init_node 2 &&
	hl_use_bin 3 "$HIGHLOAD_IPFS_STOCK_BIN" &&
	hl_init_node 3 &&
	test_must_fail hl_ipfs 3 stats highload 2>stock.err &&
	hl_ipfs 2 stats highload >/dev/null
'

test_expect_success STOCK_BIN 'start both daemons and connect them' '
	hl_start_daemon 2 &&
	hl_start_daemon 3 &&
	hl_connect 2 3 &&
	hl_connect 3 2
'

test_expect_success STOCK_BIN 'plain Kubo fetches a file from ours' '
	head -c $SIZE /dev/urandom >file2 &&
	CID2=$(hl_ipfs 2 add -Q file2) &&
	not_local 3 "$CID2" &&
	fetch 3 "$CID2" file2.got &&
	cmp file2 file2.got &&
	test "$(received_from 3 2)" -ge $SIZE
'

test_expect_success STOCK_BIN 'ours fetches a file from plain Kubo' '
	head -c $SIZE /dev/urandom >file3 &&
	CID3=$(hl_ipfs 3 add -Q file3) &&
	not_local 2 "$CID3" &&
	fetch 2 "$CID3" file3.got &&
	cmp file3 file3.got &&
	test "$(received_from 2 3)" -ge $SIZE
'

test_expect_success STOCK_BIN 'stop both daemons' '
	hl_stop_daemon 2 &&
	hl_stop_daemon 3
'

test_done
