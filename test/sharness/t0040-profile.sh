#!/usr/bin/env bash
#
# The highload init profile: `ipfs init --profile=highload` and
# `ipfs config profile apply highload`.

test_description="the highload config profile"

. "$(dirname "$0")/lib/test-lib.sh"

KEY=Plugins.Plugins.highload

# Every knob the profile writes, at its default.
ALL_DEFAULTS='Disabled=false
Config.Bitswap.Enabled=true
Config.Bitswap.MaxOutstandingBytesPerPeer="1MiB"
Config.Bitswap.TargetMessageSize="256KiB"
Config.Bitswap.WantHaveReplaceSize="1KiB"
Config.Bitswap.TaskWorkerCount=16
Config.Bitswap.EngineTaskWorkerCount=8
Config.Bitswap.EngineBlockstoreWorkerCount=128
Config.Bitswap.Adaptive=true
Config.Bitswap.PriorityPeers="none"
Config.Bitswap.PriorityShare=80
Config.Bitswap.GoodShare=10
Config.Bitswap.UnknownShare=10
Config.Bitswap.GoodPeerRate=20000
Config.Bitswap.UnknownPeerRate=5000
Config.Bitswap.GoodPeerPending=1024
Config.Bitswap.UnknownPeerPending=512
Config.Bitswap.GlobalPending=65536
Config.Bitswap.BreakerCooldown="5s"
Config.Bitswap.BreakerMaxCooldown="1m0s"
Config.Bitswap.BreakerRamp="1s"
Config.Bitswap.DisconnectAbusive=true
Config.Bitswap.AbusiveHold="1s"
Config.Bitswap.Prefetch=256
Config.Bitswap.PrefetchDirect=true
Config.Bitswap.SimulateDontHaveOnTimeout=false
Config.Bitswap.DontHaveMinTimeout="50ms"
Config.ConnMgr.Enabled=true
Config.ConnMgr.MinHighWater=0
Config.ConnMgr.MaxHighWater=0
Config.ConnMgr.MinGracePeriod="0s"
Config.ConnMgr.MaxTrimPerRound=0
Config.ConnMgr.RoundPause="1s"
Config.ConnMgr.AdaptInterval="5s"
Config.ConnMgr.SlowLatency="1s"
Config.ConnMgr.ProtectedPeers=[]
Config.ConnMgr.UsePeering=true
Config.ConnMgr.ReconnectMinBackoff="1s"
Config.ConnMgr.ReconnectMaxBackoff="5m0s"
Config.ConnMgr.KeepAlive="30s"
Config.ConnMgr.MuxerKeepAlive="2m0s"
Config.ConnMgr.MuxerRTTInterval="5m0s"
Config.ConnMgr.MuxerAcceptBacklog=512
Config.ConnMgr.ClusterAPI="none"
Config.ConnMgr.ClusterRefresh="1m0s"
Config.ConnMgr.WatchStreams=true
Config.ConnMgr.BatchTLSWrites=true
Config.Health.Enabled=true
Config.Health.Interval="5s"
Config.Health.MemoryBudget="0"
Config.Health.ElevatedPercent=80
Config.Health.ElevatedExitPercent=70
Config.Health.CriticalPercent=95
Config.Health.CriticalExitPercent=85
Config.Health.MinDwell="10s"
Config.Health.Horizon="30m0s"
Config.Health.DiskPaths="auto"
Config.AutoTune.Enabled=false
Config.AutoTune.Window="1m0s"
Config.AutoTune.P99Limit="500ms"
Config.AutoTune.TuneGOGC=true
Config.Metrics.Enabled=true
Config.Runtime.HugePages=true
Config.Runtime.HeapReserve="256MiB"'

# plugin_json N FILE: node N's Plugins.Plugins.highload as JSON in FILE.
plugin_json() {
	hl_ipfs "$1" config --json "$KEY" >"$2"
}

# keys_in FILE: every leaf key path of the JSON object in FILE, sorted.
keys_in() {
	"$HL_PYTHON" -c 'import json, sys
def walk(v, p):
    if isinstance(v, dict):
        for k, x in v.items():
            yield from walk(x, p + [k])
    else:
        yield ".".join(p)
print("\n".join(sorted(walk(json.load(open(sys.argv[1])), []))))' "$1"
}

test_expect_success PYTHON3 'ipfs init --profile=highload writes every knob and Disabled false' '
	hl_init_node 0 --profile=highload &&
	plugin_json 0 init.json &&
	hl_json_assert init.json $ALL_DEFAULTS
'

test_expect_success PYTHON3 'it writes nothing else' '
	keys_in init.json >keys &&
	printf "%s\n" $ALL_DEFAULTS | sed "s/=.*//" | sort >keys.expected &&
	test_cmp keys.expected keys
'

test_expect_success 'the plugin runs with it' '
	hl_ipfs 0 stats highload >stats &&
	hl_grep_fixed stats "plugin: loaded"
'

test_expect_success 'a repo inited without the profile has no highload config' '
	hl_init_node 1 &&
	test_must_fail hl_ipfs 1 config "$KEY"
'

test_expect_success PYTHON3 'ipfs config profile apply highload adds it' '
	hl_ipfs 1 config profile apply highload >apply.out &&
	plugin_json 1 applied.json &&
	hl_json_assert applied.json $ALL_DEFAULTS &&
	test_cmp init.json applied.json
'

test_expect_success PYTHON3 'applying it again keeps a value the user edited' '
	hl_ipfs 1 config --json "$KEY.Config.Bitswap.TaskWorkerCount" 32 &&
	hl_ipfs 1 config --json "$KEY.Config.Health" "{\"Enabled\":false}" &&
	hl_ipfs 1 config profile apply highload >apply2.out &&
	plugin_json 1 again.json &&
	hl_json_assert again.json Config.Bitswap.TaskWorkerCount=32 \
		Config.Health.Enabled=false \
		Config.Bitswap.EngineTaskWorkerCount=8 \
		Config.Bitswap.MaxOutstandingBytesPerPeer=\"1MiB\" \
		Disabled=false &&
	hl_ipfs 1 config "$KEY.Config.Bitswap.TaskWorkerCount" >value &&
	echo 32 >expected &&
	test_cmp expected value
'

test_expect_success PYTHON3 'applying it fills the knobs missing from a partial config' '
	hl_ipfs 1 config --json "$KEY.Config" "{\"Bitswap\":{\"TargetMessageSize\":\"32KiB\"}}" &&
	hl_ipfs 1 config profile apply highload >apply3.out &&
	plugin_json 1 partial.json &&
	hl_json_assert partial.json Config.Bitswap.TargetMessageSize=\"32KiB\" \
		Config.Bitswap.TaskWorkerCount=16 Config.Metrics.Enabled=true &&
	keys_in partial.json >keys &&
	test_cmp keys.expected keys
'

test_expect_success PYTHON3 'applying it enables a disabled plugin' '
	hl_ipfs 1 config --json "$KEY.Disabled" true &&
	hl_ipfs 1 stats highload >stats &&
	hl_grep_fixed stats "plugin: not loaded" &&
	hl_ipfs 1 config profile apply highload >apply4.out &&
	plugin_json 1 enabled.json &&
	hl_json_assert enabled.json Disabled=false Config.Bitswap.TargetMessageSize=\"32KiB\" &&
	hl_ipfs 1 stats highload >stats &&
	hl_grep_fixed stats "plugin: loaded"
'

test_expect_success 'applying it over an invalid value fails, names the key, changes nothing' '
	hl_ipfs 1 config --json "$KEY.Config.Bitswap.TaskWorkerCount" 0 &&
	cp "$(hl_node_path 1)/config" config.before &&
	test_must_fail hl_ipfs 1 config profile apply highload >apply5.out 2>apply5.err &&
	hl_grep_fixed apply5.err "profile highload: the existing config is invalid, fix it first" &&
	hl_grep_fixed apply5.err "Config.Bitswap.TaskWorkerCount: 0 is out of range" &&
	test_cmp config.before "$(hl_node_path 1)/config"
'

test_expect_success 'ipfs config profile --help lists the profiles' '
	hl_ipfs 1 config profile --help >profiles &&
	grep -E "^ +.test.:$" profiles
'

# Kubo builds this list (core/commands/config.go, buildProfileHelp) while its
# packages initialise, before plugin/profile.go's init() adds the highload
# profile to config.Profiles: the profile works but is not listed.
test_expect_success 'ipfs config profile --help lists the highload profile' '
	grep -E "^ +.highload.:$" profiles
'

test_done
