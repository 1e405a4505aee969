#!/usr/bin/env bash
#
# `ipfs stats highload` offline and online, its help text, the Prometheus
# collectors, and a node with the plugin disabled.

test_description="ipfs stats highload and the plugin's metrics"

. "$(dirname "$0")/lib/test-lib.sh"

# stats_json N FILE: `ipfs stats highload --enc=json` of node N into FILE,
# checked to be one valid JSON document.
stats_json() {
	hl_ipfs "$1" stats highload --enc=json >"$2" &&
	hl_json_assert "$2"
}

# metrics N FILE: node N's /debug/metrics/prometheus into FILE.
metrics() {
	url=$(hl_api_url "$1") &&
	curl -sS --fail --max-time 20 "$url/debug/metrics/prometheus" >"$2"
}

test_expect_success 'init node 0' '
	hl_init_node 0
'

test_expect_success 'offline: text output names the plugin, offline, loaded' '
	hl_ipfs 0 stats highload >offline.txt &&
	hl_grep_fixed offline.txt "highload plugin 0." &&
	hl_grep_fixed offline.txt "offline" &&
	hl_grep_fixed offline.txt "plugin: loaded" &&
	! grep -F "online" offline.txt &&
	hl_grep_fixed offline.txt "Bitswap.TaskWorkerCount" &&
	grep -E "^  bitswap +idle " offline.txt
'

test_expect_success PYTHON3 'offline: --enc=json is valid JSON with the expected fields' '
	stats_json 0 offline.json &&
	hl_json_assert offline.json Plugin=\"highload\" Loaded=true Online=false \
		Config.Bitswap.TaskWorkerCount=8 \
		Config.Bitswap.MaxOutstandingBytesPerPeer=\"1MiB\" \
		Components.bitswap.Status=\"idle\" \
		Components.metrics.Status=\"idle\"
'

test_expect_success PYTHON3 'offline: JSON reflects a value set in the config' '
	hl_ipfs 0 config --json Plugins.Plugins.highload.Config.Bitswap.TaskWorkerCount 16 &&
	test_when_finished "hl_ipfs 0 config --json Plugins.Plugins.highload.Config {}" &&
	stats_json 0 set.json &&
	hl_json_assert set.json Config.Bitswap.TaskWorkerCount=16 \
		Config.Bitswap.EngineTaskWorkerCount=8
'

test_expect_success '--help: every line fits in 80 columns' '
	hl_ipfs 0 stats highload --help >help.txt &&
	hl_grep_fixed help.txt "ipfs stats highload" &&
	test "$(wc -l <help.txt)" -gt 5 &&
	awk "length > 80 { print FILENAME \":\" NR \": \" length \" columns: \" \$0; bad = 1 } END { exit bad }" help.txt
'

test_expect_success 'start the daemon of node 0' '
	hl_start_daemon 0
'

test_expect_success 'online: text output says online and loaded' '
	hl_ipfs 0 stats highload >online.txt &&
	hl_grep_fixed online.txt "  node:   online" &&
	hl_grep_fixed online.txt "plugin: loaded" &&
	grep -E "^  bitswap +active " online.txt
'

test_expect_success PYTHON3 'online: JSON says Online, bitswap and metrics active' '
	stats_json 0 online.json &&
	hl_json_assert online.json Loaded=true Online=true \
		Components.bitswap.Status=\"active\" \
		Components.metrics.Status=\"active\"
'

test_expect_success CURL 'online: /debug/metrics/prometheus has highload_plugin_info' '
	metrics 0 metrics.txt &&
	grep "^highload_plugin_info{version=\"0\.[0-9.]*\"} 1$" metrics.txt &&
	grep "^highload_plugin_component_status{component=\"bitswap\",status=\"active\"} 1$" metrics.txt
'

test_expect_success 'stop the daemon of node 0' '
	hl_stop_daemon 0
'

test_expect_success 'Bitswap.Enabled and Metrics.Enabled false' '
	hl_ipfs 0 config --json Plugins.Plugins.highload.Config \
		"{\"Bitswap\":{\"Enabled\":false},\"Metrics\":{\"Enabled\":false}}" &&
	hl_start_daemon 0
'

test_expect_success PYTHON3 'components off: bitswap and metrics disabled, online' '
	stats_json 0 off.json &&
	hl_json_assert off.json Loaded=true Online=true \
		Config.Bitswap.Enabled=false Config.Metrics.Enabled=false \
		Components.bitswap.Status=\"disabled\" \
		Components.metrics.Status=\"disabled\"
'

test_expect_success CURL 'components off: no highload_* metrics' '
	metrics 0 off-metrics.txt &&
	grep -q "^go_goroutines " off-metrics.txt &&
	! grep "^highload_" off-metrics.txt
'

test_expect_success 'components off: stop the daemon, restore the config' '
	hl_stop_daemon 0 &&
	hl_ipfs 0 config --json Plugins.Plugins.highload.Config {}
'

test_expect_success 'daemon --offline: the plugin is loaded, bitswap idle' '
	hl_start_daemon 0 --offline &&
	hl_ipfs 0 stats highload >offline-daemon.txt &&
	hl_grep_fixed offline-daemon.txt "  node:   offline" &&
	hl_grep_fixed offline-daemon.txt "plugin: loaded" &&
	grep -E "^  bitswap +idle " offline-daemon.txt &&
	hl_stop_daemon 0
'

test_expect_success 'disable the plugin (Plugins.Plugins.highload.Disabled)' '
	hl_ipfs 0 config --json Plugins.Plugins.highload.Disabled true
'

test_expect_success 'disabled, offline: stats says not loaded' '
	hl_ipfs 0 stats highload >disabled.txt &&
	hl_grep_fixed disabled.txt "highload plugin" &&
	hl_grep_fixed disabled.txt "plugin: not loaded" &&
	! grep -F "plugin: loaded" disabled.txt &&
	! grep -F "Bitswap.TaskWorkerCount" disabled.txt
'

test_expect_success PYTHON3 'disabled, offline: JSON has Loaded false and no Config' '
	stats_json 0 disabled.json &&
	hl_json_assert disabled.json Loaded=false Online=false "!Config" \
		Components.highload.Status=\"disabled\"
'

test_expect_success 'disabled: the daemon starts' '
	hl_start_daemon 0
'

test_expect_success PYTHON3 'disabled, online: JSON has Online true, Loaded false' '
	stats_json 0 disabled-online.json &&
	hl_json_assert disabled-online.json Online=true Loaded=false "!Config"
'

test_expect_success CURL 'disabled, online: metrics are served but lack highload_*' '
	metrics 0 disabled-metrics.txt &&
	grep -q "^go_goroutines " disabled-metrics.txt &&
	! grep "^highload_" disabled-metrics.txt
'

test_expect_success 'disabled: stop the daemon' '
	hl_stop_daemon 0
'

test_done
