#!/usr/bin/env bash
#
# `ipfs stats highload health`, `autotune` (with revert/freeze/resume) and
# `advise`: offline refusal, text and JSON in the daemon, metrics, help
# width, and refusal of crossed health thresholds.

test_description="health, autotune and advise commands"

. "$(dirname "$0")/lib/test-lib.sh"

# json_check FILE PYTHON-EXPR: the expression over the document d must hold.
json_check() {
	"$HL_PYTHON" - "$1" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
if not eval(sys.argv[2]):
    print("%s: %s is false for:" % (sys.argv[1], sys.argv[2]), file=sys.stderr)
    print(json.dumps(d, indent=2)[:4000], file=sys.stderr)
    sys.exit(1)
PY
}

metrics() {
	url=$(hl_api_url "$1") &&
	curl -sS --fail --max-time 20 "$url/debug/metrics/prometheus" >"$2"
}

test_expect_success 'init node 0' '
	hl_init_node 0
'

test_expect_success 'offline: health, autotune and advise say daemon only' '
	test_must_fail hl_ipfs 0 stats highload health 2>health-off.err &&
	hl_grep_fixed health-off.err "runs in the daemon only" &&
	test_must_fail hl_ipfs 0 stats highload autotune 2>tune-off.err &&
	hl_grep_fixed tune-off.err "Config.AutoTune.Enabled" &&
	test_must_fail hl_ipfs 0 stats highload advise 2>advise-off.err &&
	hl_grep_fixed advise-off.err "runs in the daemon only"
'

test_expect_success 'offline: stats lists health idle and autotune disabled' '
	hl_ipfs 0 stats highload >stats.txt &&
	grep -E "^  health +idle " stats.txt &&
	grep -E "^  autotune +disabled " stats.txt
'

test_expect_success 'crossed thresholds are refused, naming both keys' '
	hl_ipfs 0 config --json Plugins.Plugins.highload.Config.Health \
		"{\"ElevatedPercent\":80,\"ElevatedExitPercent\":85}" &&
	test_must_fail hl_ipfs 0 stats highload 2>crossed.err &&
	hl_grep_fixed crossed.err "Config.Health.ElevatedExitPercent (85) must be below Config.Health.ElevatedPercent (80)" &&
	hl_daemon_must_fail 0 &&
	hl_grep_fixed "$(hl_daemon_log 0)" "ElevatedExitPercent (85)"
'

test_expect_success '`ipfs config` still fixes crossed thresholds' '
	hl_ipfs 0 config --json Plugins.Plugins.highload.Config.Health.ElevatedExitPercent 70 2>fix.err &&
	hl_grep_fixed fix.err "WARNING" &&
	hl_ipfs 0 stats highload >/dev/null
'

test_expect_success 'an interval out of range is refused' '
	hl_ipfs 0 config --json Plugins.Plugins.highload.Config.Health.Interval "\"1ms\"" 2>/dev/null &&
	test_must_fail hl_ipfs 0 stats highload 2>interval.err &&
	hl_grep_fixed interval.err "Config.Health.Interval" &&
	hl_grep_fixed interval.err "accepted: 100ms to 10m"
'

test_expect_success 'configure: health every 200ms, no disks, tuner on' '
	hl_ipfs 0 config --json Plugins.Plugins.highload.Config \
		"{\"Health\":{\"Interval\":\"200ms\",\"DiskPaths\":\"\",\"MemoryBudget\":\"64GiB\"},\"AutoTune\":{\"Enabled\":true,\"Window\":\"1s\"}}" &&
	hl_start_daemon 0
'

test_expect_success 'daemon: health text shows the level and readings' '
	hl_ipfs 0 stats highload health >health.txt &&
	hl_grep_fixed health.txt "Pressure level: normal" &&
	hl_grep_fixed health.txt "Memory:  RSS" &&
	hl_grep_fixed health.txt "of budget 64 GiB" &&
	hl_grep_fixed health.txt "FDs:" &&
	hl_grep_fixed health.txt "Samples:"
'

test_expect_success PYTHON3 'daemon: health JSON has the snapshot' '
	hl_ipfs 0 stats highload health --enc=json >health.json &&
	hl_json_assert health.json Level=\"normal\" MemoryBudget=68719476736 PressureKnown=true &&
	json_check health.json "d[\"RSS\"] > 0 and d[\"FDLimit\"] > 0 and d[\"Samples\"] >= 1 and d[\"Disks\"] is None"
'

test_expect_success PYTHON3 'daemon: the monitor keeps sampling' '
	n1=$(hl_ipfs 0 stats highload health --enc=json | "$HL_PYTHON" -c "import json,sys; print(json.load(sys.stdin)[\"Samples\"])") &&
	i=0 && while test $i -lt 100; do
		n2=$(hl_ipfs 0 stats highload health --enc=json | "$HL_PYTHON" -c "import json,sys; print(json.load(sys.stdin)[\"Samples\"])") &&
		test "$n2" -gt "$n1" && break
		i=$((i + 1)); sleep 0.1
	done &&
	test "$n2" -gt "$n1"
'

test_expect_success 'daemon: stats lists health and autotune active' '
	hl_ipfs 0 stats highload >stats-on.txt &&
	grep -E "^  health +active +sampling every 200ms; budget 64 GiB; 0 disk path\(s\); level normal$" stats-on.txt &&
	grep -E "^  autotune +active +window 1s; 3 knob\(s\)" stats-on.txt
'

test_expect_success 'daemon: autotune text lists the GOGC knob and no changes' '
	hl_ipfs 0 stats highload autotune >tune.txt &&
	hl_grep_fixed tune.txt "Tuner:" &&
	grep -E "^  go\.GOGC +[0-9]+ percent +\[50, 400\] step 25" tune.txt &&
	hl_grep_fixed tune.txt "Changes (0):"
'

test_expect_success PYTHON3 'daemon: autotune JSON' '
	hl_ipfs 0 stats highload autotune --enc=json >tune.json &&
	hl_json_assert tune.json Frozen=false Window=1000000000 &&
	json_check tune.json "sorted(k[\"Name\"] for k in d[\"Knobs\"]) == [\"bitswap.global_pending\", \"bitswap.peer_rate.unknown\", \"go.GOGC\"]" &&
	json_check tune.json "[(k[\"Unit\"], k[\"Min\"], k[\"Max\"]) for k in d[\"Knobs\"] if k[\"Name\"] == \"go.GOGC\"] == [(\"percent\", 50, 400)]" &&
	json_check tune.json "d[\"Changes\"] == [] and d[\"State\"] in (\"measuring\", \"no knobs registered\")"
'

test_expect_success 'daemon: revert with nothing kept says so' '
	test_must_fail hl_ipfs 0 stats highload autotune revert 2>revert.err &&
	hl_grep_fixed revert.err "no kept change to revert"
'

test_expect_success PYTHON3 'daemon: freeze and resume' '
	hl_ipfs 0 stats highload autotune freeze -r "sharness" >freeze.txt &&
	hl_grep_fixed freeze.txt "tuner frozen" &&
	hl_ipfs 0 stats highload autotune --enc=json >frozen.json &&
	hl_json_assert frozen.json Frozen=true State=\"frozen\" Detail=\"sharness\" &&
	hl_ipfs 0 stats highload autotune resume --enc=json >resume.json &&
	hl_json_assert resume.json Frozen=false
'

test_expect_success PYTHON3 'daemon: set a knob by hand only while frozen' '
	test_must_fail hl_ipfs 0 stats highload autotune set go.GOGC 150 2>set-running.err &&
	hl_grep_fixed set-running.err "freeze the tuner" &&
	hl_ipfs 0 stats highload autotune freeze -r "sharness set" >/dev/null &&
	hl_ipfs 0 stats highload autotune set go.GOGC 210 -r "pin" >set.txt &&
	hl_grep_fixed set.txt "set go.GOGC:" &&
	hl_grep_fixed set.txt "200 percent: operator: pin" &&
	test_must_fail hl_ipfs 0 stats highload autotune set go.GOGC 5000 2>set-out.err &&
	hl_grep_fixed set-out.err "outside [50, 400]" &&
	test_must_fail hl_ipfs 0 stats highload autotune set go.GOGC lots 2>set-nan.err &&
	hl_grep_fixed set-nan.err "is not a number" &&
	hl_ipfs 0 stats highload autotune --enc=json >set.json &&
	json_check set.json "[k[\"Value\"] for k in d[\"Knobs\"] if k[\"Name\"] == \"go.GOGC\"] == [200]" &&
	json_check set.json "d[\"Changes\"][-1][\"Kind\"] == \"set\" and d[\"Changes\"][-1][\"Reason\"] == \"operator: pin\"" &&
	hl_ipfs 0 stats highload autotune resume >/dev/null
'

test_expect_success 'daemon: advise text and JSON' '
	hl_ipfs 0 stats highload advise >advise.txt &&
	hl_grep_fixed advise.txt "Analysed " &&
	hl_ipfs 0 stats highload advise --enc=json >advise.json &&
	hl_json_assert advise.json
'

test_expect_success CURL 'daemon: highload_health_* and highload_autotune_* metrics' '
	metrics 0 metrics.txt &&
	grep "^highload_health_level 0$" metrics.txt &&
	grep "^highload_health_rss_bytes " metrics.txt &&
	grep "^highload_health_memory_budget_bytes 6.8719476736e+10$" metrics.txt &&
	grep "^highload_autotune_knobs 3$" metrics.txt &&
	grep "^highload_autotune_knob_value{knob=\"go.GOGC\",unit=\"percent\"} " metrics.txt
'

test_expect_success '--help of each command fits in 80 columns' '
	for c in health autotune "autotune revert" "autotune freeze" "autotune resume" "autotune set" advise; do
		hl_ipfs 0 stats highload $c --help >help.txt &&
		awk "length > 80 { print FILENAME \":\" NR \": \" \$0; bad = 1 } END { exit bad }" help.txt || return 1
	done
'

test_expect_success 'stop the daemon of node 0' '
	hl_stop_daemon 0
'

test_expect_success 'Health.Enabled false: the daemon runs without the monitor' '
	hl_ipfs 0 config --json Plugins.Plugins.highload.Config "{\"Health\":{\"Enabled\":false}}" &&
	hl_start_daemon 0 &&
	test_must_fail hl_ipfs 0 stats highload health 2>h-off.err &&
	hl_grep_fixed h-off.err "Config.Health.Enabled" &&
	hl_ipfs 0 stats highload >stats-hoff.txt &&
	grep -E "^  health +disabled " stats-hoff.txt &&
	hl_stop_daemon 0
'

test_expect_success PYTHON3 'DiskPaths auto: the repo and its datastore paths are watched' '
	hl_ipfs 0 config --json Plugins.Plugins.highload.Config "{}" &&
	hl_start_daemon 0 &&
	hl_ipfs 0 stats highload health --enc=json >auto.json &&
	REPO=$(hl_node_path 0) "$HL_PYTHON" -c "import json, os, sys
d = json.load(open(\"auto.json\"))
got = sorted(x[\"Path\"] for x in d[\"Disks\"])
r = os.environ[\"REPO\"]
want = sorted([r, r + \"/blocks\", r + \"/datastore\"])
sys.exit(0 if got == want else \"disks %s, want %s\" % (got, want))" &&
	hl_stop_daemon 0
'

test_done
