#!/usr/bin/env bash
#
# The adaptive connection manager in a real daemon: it replaces Kubo's, trims
# strangers down to LowWater, keeps its protected pool peer through a trim and
# redials it after `ipfs swarm disconnect`; bad watermarks stop the daemon.

test_description="adaptive connection manager (connmgr)"

. "$(dirname "$0")/lib/test-lib.sh"

# cm_json N FILE: node N's `ipfs stats highload connmgr --enc=json` into FILE.
cm_json() {
	hl_ipfs "$1" stats highload connmgr --enc=json >"$2"
}

# cm_poll N SECONDS PYEXPR: poll node N's connmgr stats (bound to s) until
# the Python expression holds, for at most SECONDS.
cm_poll() {
	local deadline=$(( $(date +%s) + $2 ))
	until cm_json "$1" cm.json && "$HL_PYTHON" -c 'import json, sys
s = json.load(open("cm.json"))
sys.exit(0 if eval(sys.argv[1]) else 1)' "$3"; do
		if test "$(date +%s)" -ge "$deadline"; then
			echo >&2 "node $1: not within $2s: $3"
			cat >&2 cm.json
			return 1
		fi
		sleep 0.2
	done
}

# Node 0 runs without the DHT: the DHT protects its routing-table peers
# (tag "kbucket"), which the manager rightly never trims.
test_expect_success 'init node 0 (manager under test, no DHT) and nodes 1-3' '
	for n in 0 1 2 3; do hl_init_node $n || return 1; done &&
	hl_ipfs 0 config Routing.Type none &&
	hl_ipfs 0 config --json Swarm.ConnMgr.LowWater 1 &&
	hl_ipfs 0 config --json Swarm.ConnMgr.HighWater 2 &&
	hl_ipfs 0 config Swarm.ConnMgr.GracePeriod 5s &&
	hl_ipfs 0 config Swarm.ConnMgr.SilencePeriod 500ms
'

test_expect_success 'start node 1 and make it node 0'"'"'s protected peer' '
	hl_start_daemon 1 &&
	FRIEND=$(hl_loopback_addr 1) &&
	FRIEND_ID=$(hl_peer_id 1) &&
	hl_ipfs 0 config --json Plugins.Plugins.highload.Config \
		"{\"ConnMgr\":{\"ProtectedPeers\":[\"$FRIEND\"],\"MinHighWater\":2,\"MaxHighWater\":2,\"MinGracePeriod\":\"5s\",\"RoundPause\":\"100ms\"}}" &&
	hl_start_daemon 0
'

test_expect_success 'the host runs the adaptive manager' '
	hl_ipfs 0 stats highload >stats0 &&
	grep -E "^  connmgr +active +adaptive manager in the host: LowWater 1, HighWater 2" stats0 &&
	cm_json 0 cm0.json &&
	hl_json_assert cm0.json low_water=1 high_water=2
'

test_expect_success 'the pool connects the protected peer' '
	cm_poll 0 20 "s[\"pool\"][0][\"connected\"] and s[\"protected\"][0][\"id\"] == \"$FRIEND_ID\""
'

# Both strangers must connect within one grace period (5 s) for the count
# (3) to pass HighWater (2); the daemons are started first for that.
test_expect_success 'strangers connect with ipfs swarm connect' '
	hl_start_daemon 2 &&
	hl_start_daemon 3 &&
	hl_connect 2 0 &&
	hl_connect 3 0
'

test_expect_success 'they are trimmed to LowWater; the protected peer stays' '
	cm_poll 0 30 "s[\"conns\"] == 1 and s[\"trimmed\"] >= 2 and s[\"protected\"][0][\"connected\"]" &&
	hl_ipfs 0 swarm peers >peers0 &&
	test "$(wc -l <peers0)" -eq 1 &&
	grep "/p2p/$FRIEND_ID\$" peers0
'

test_expect_success 'ipfs swarm disconnect: the pool redials the protected peer' '
	hl_ipfs 0 swarm disconnect "$FRIEND" &&
	cm_poll 0 30 "s[\"pool\"][0][\"connected\"] and s[\"pool\"][0][\"reconnects\"] >= 1" &&
	hl_ipfs 0 swarm peers | grep "/p2p/$FRIEND_ID\$"
'

test_expect_success 'ipfs swarm resources still works' '
	hl_ipfs 0 swarm resources >res0 &&
	grep -q ConnsInbound res0
'

# Kubo computes System.ConnsInbound and leaves Conns and the stream limits
# unlimited; the manager is clamped below exactly that, as Kubo demands of
# the configured HighWater.
test_expect_success 'the rcmgr limit the manager follows is System.ConnsInbound' '
	hl_ipfs 0 swarm resources --enc=json >res0.json &&
	cm_json 0 cm0.json &&
	"$HL_PYTHON" -c "import json, sys
r = json.load(open(\"res0.json\"))[\"System\"]
s = json.load(open(\"cm0.json\"))
for k in (\"Conns\", \"Streams\", \"StreamsInbound\"):
    assert not isinstance(r[k], int), (k, r[k])
sys.exit(0 if s[\"limit\"] == r[\"ConnsInbound\"] else 1)"
'

test_expect_success 'text output and metrics' '
	hl_ipfs 0 stats highload connmgr >cm0.txt &&
	hl_grep_fixed cm0.txt "Watermarks:   low 1, high 2" &&
	hl_grep_fixed cm0.txt "Pool (1):" &&
	curl -sf "$(hl_api_url 0)/debug/metrics/prometheus" >metrics0 &&
	hl_grep_fixed metrics0 "highload_connmgr_watermark_connections{mark=\"high\"} 2" &&
	grep -E "^highload_connmgr_trimmed_connections_total [1-9]" metrics0
'

test_expect_success 'stop the daemons' '
	for n in 0 1 2 3; do hl_stop_daemon $n || return 1; done
'

test_expect_success 'without a daemon the command says why it has nothing to show' '
	test_must_fail hl_ipfs 0 stats highload connmgr 2>offline.err &&
	hl_grep_fixed offline.err "the adaptive connection manager is not running here"
'

test_expect_success 'inverted watermarks stop the daemon with a clear message' '
	hl_ipfs 0 config --json Swarm.ConnMgr.LowWater 100 &&
	hl_ipfs 0 config --json Swarm.ConnMgr.HighWater 50 &&
	hl_ipfs 0 config --json Plugins.Plugins.highload.Config "{}" &&
	hl_daemon_must_fail 0 &&
	hl_grep_fixed "$(hl_daemon_log 0)" "Swarm.ConnMgr.LowWater (100) must be at least 0 and below Swarm.ConnMgr.HighWater (50)"
'

test_expect_success 'a MaxHighWater above the rcmgr limit is refused' '
	hl_ipfs 0 config --json Swarm.ConnMgr.LowWater 32 &&
	hl_ipfs 0 config --json Swarm.ConnMgr.HighWater 96 &&
	hl_ipfs 0 config --json Plugins.Plugins.highload.Config.ConnMgr "{\"MaxHighWater\":1000000}" &&
	hl_daemon_must_fail 0 &&
	hl_grep_fixed "$(hl_daemon_log 0)" "Config.ConnMgr.MaxHighWater (1000000) must be below the resource manager"
'

test_done
