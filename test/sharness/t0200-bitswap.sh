#!/usr/bin/env bash
#
# The adaptive Bitswap policy in a real daemon: a loadgen wantlist flood is
# shed (DONT_HAVE) while a peer in Peering.Peers keeps fetching; malformed
# and oversized wantlists leave the node answering; Kubo's own Bitswap
# commands keep working.

test_description="adaptive Bitswap: shedding, priority peers, garbage, stock commands"

# sharness moves HOME into its trash directory; keep Go's caches where they
# are, so building loadgen downloads nothing.
if command -v go >/dev/null 2>&1; then
	GOMODCACHE=$(go env GOMODCACHE) GOCACHE=$(go env GOCACHE) GOPATH=$(go env GOPATH)
	export GOMODCACHE GOCACHE GOPATH
fi

. "$(dirname "$0")/lib/test-lib.sh"

LOADGEN=${HIGHLOAD_LOADGEN_BIN:-$SHARNESS_TRASH_DIRECTORY/loadgen}
command -v go >/dev/null 2>&1 && test_set_prereq GO
test -n "$HIGHLOAD_LOADGEN_BIN" && test_set_prereq GO

# shed_total FILE: wants shed, all classes, from stats JSON.
shed_total() {
	"$HL_PYTHON" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(sum(v for c in s["classes"] for v in c["shed"].values()))' "$1"
}

# wait_shed: poll node 0's stats (bounded) until some want was shed.
wait_shed() {
	n=0
	while test $n -lt 80; do
		hl_ipfs 0 stats highload bitswap --enc=json >s1.json || return 1
		shed=$(shed_total s1.json)
		echo "shed: $shed"
		test "$shed" -gt 0 && return 0
		sleep 0.5
		n=$((n + 1))
	done
	return 1
}

# start_flood: 8 loadgen peers, each re-sending 1,000 missing wants 10 times
# a second to node 0, in the background; the PID goes to loadgen.pid.
start_flood() {
	"$LOADGEN" flood -target "$(hl_loopback_addr 0)" -peers 8 -wants 1000 -rate 10 \
		-duration 60s >flood.out 2>flood.err &
	echo $! >loadgen.pid
}

# stop_pid PID: SIGTERM PID (ours, by PID) and wait, bounded, until it is gone.
stop_pid() {
	kill "$1" 2>/dev/null
	n=0
	while kill -0 "$1" 2>/dev/null && test $n -lt 50; do
		sleep 0.2
		n=$((n + 1))
	done
	! kill -0 "$1" 2>/dev/null
}

test_expect_success GO,PYTHON3 'build loadgen' '
	if test -z "$HIGHLOAD_LOADGEN_BIN"; then
		(cd "$HL_REPO_ROOT" && go build -o "$LOADGEN" ./bench/loadgen/cmd/loadgen)
	fi &&
	test -x "$LOADGEN"
'

test_expect_success 'init provider (node 0) with node 1 in its Peering.Peers' '
	hl_init_node 0 &&
	hl_init_node 1 &&
	hl_ipfs 0 config --json Peering.Peers "[{\"ID\": \"$(hl_peer_id 1)\", \"Addrs\": []}]" &&
	hl_ipfs 0 config --json Plugins.Plugins.highload.Config \
		"{\"Bitswap\":{\"UnknownPeerRate\":2000,\"BreakerCooldown\":\"2s\"}}"
'

test_expect_success 'start both daemons' '
	hl_start_daemon 0 &&
	hl_start_daemon 1
'

test_expect_success 'stats highload bitswap: three classes, nothing shed yet' '
	hl_ipfs 0 stats highload bitswap >text &&
	grep -E "^ +priority +" text &&
	grep -E "^ +unknown +" text &&
	grep "^Peer breakers:" text &&
	hl_ipfs 0 stats highload bitswap --enc=json >s0.json &&
	hl_json_assert s0.json &&
	test "$(shed_total s0.json)" = 0
'

test_expect_success 'add a 2 MiB file of 16 KiB blocks on the provider' '
	head -c 2097152 /dev/urandom >data &&
	hl_ipfs 0 add -Q --chunker=size-16384 data >cid
'

test_expect_success GO,PYTHON3 'a loadgen flood is shed' '
	start_flood &&
	wait_shed
'

test_expect_success GO,PYTHON3 'the peered node fetches during the flood' '
	hl_connect 1 0 &&
	hl_ipfs 1 --timeout=60s cat "$(cat cid)" >got &&
	test_cmp data got &&
	hl_ipfs 0 stats highload bitswap --enc=json >s2.json &&
	"$HL_PYTHON" -c "import json,sys; s=json.load(open(\"s2.json\")); p=s[\"classes\"][0]; sys.exit(0 if p[\"served\"] > 0 and p[\"shed\"][\"breaker\"] == 0 else 1)"
'

test_expect_success 'stock Bitswap commands still work on the provider' '
	hl_ipfs 0 stats bitswap >bs &&
	grep "^bitswap status" bs &&
	hl_ipfs 0 bitswap wantlist >/dev/null &&
	hl_ipfs 0 bitswap ledger "$(hl_peer_id 1)" >ledger &&
	grep "^Ledger for" ledger
'

test_expect_success GO 'stop the flood' '
	stop_pid "$(cat loadgen.pid)"
'

test_expect_success GO 'malformed and oversized wantlists leave the node answering' '
	"$LOADGEN" garbage -target "$(hl_loopback_addr 0)" >garbage.out &&
	grep "\"still_answers\":true" garbage.out &&
	hl_ipfs 0 id >/dev/null
'

test_expect_success 'stop the daemons' '
	hl_stop_daemon 1 &&
	hl_stop_daemon 0
'

test_done
