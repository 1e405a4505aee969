#!/usr/bin/env bash
#
# A bad Plugins.Plugins.highload.Config stops every ipfs command (and the
# daemon) with a message naming the key, except `ipfs config`, which warns and
# stays usable so that the value can be fixed. A bad `tiered` spec is refused.

test_description="highload config errors and the tiered datastore type"

. "$(dirname "$0")/lib/test-lib.sh"

KEY=Plugins.Plugins.highload.Config

# set_config JSON: replace node 0's plugin config (ipfs config must work
# whatever the current value is).
set_config() {
	hl_ipfs 0 config --json "$KEY" "$1" 2>config.err
}

# refused_by_id MESSAGE: `ipfs id` on node 0 fails and prints MESSAGE.
refused_by_id() {
	test_must_fail hl_ipfs 0 id >id.out 2>id.err &&
	hl_grep_fixed id.err "$1" &&
	hl_grep_fixed id.err "Error: " &&
	test_must_be_empty id.out
}

# refused MESSAGE: `ipfs id` and `ipfs daemon` on node 0 both fail, print
# MESSAGE, and the daemon exits non-zero by itself (none is left running).
refused() {
	refused_by_id "$1" &&
	hl_daemon_must_fail 0 &&
	hl_grep_fixed "$(hl_daemon_log 0)" "$1" &&
	test -z "$(hl_daemon_pid 0)"
}

test_expect_success 'init node 0' '
	hl_init_node 0 &&
	hl_ipfs 0 id >/dev/null
'

test_expect_success 'ipfs config accepts a bad size' '
	set_config "{\"Bitswap\":{\"MaxOutstandingBytesPerPeer\":\"12QB\"}}" &&
	hl_ipfs 0 config "$KEY.Bitswap.MaxOutstandingBytesPerPeer" >value 2>value.err &&
	echo 12QB >expected &&
	test_cmp expected value
'

test_expect_success 'bad size: ipfs id and ipfs daemon fail and name the key' '
	refused "highload: Config.Bitswap.MaxOutstandingBytesPerPeer: \"12QB\" is not a size"
'

test_expect_success 'bad size: ipfs config still runs and warns loudly' '
	hl_grep_fixed value.err "WARNING: highload: Config.Bitswap.MaxOutstandingBytesPerPeer: \"12QB\" is not a size" &&
	hl_grep_fixed value.err "WARNING: highload: the plugin is inactive for this \`ipfs config\` command only" &&
	hl_ipfs 0 config show >show.out 2>show.err &&
	hl_grep_fixed show.out "\"12QB\"" &&
	hl_grep_fixed show.err "WARNING: highload:"
'

test_expect_success 'bad size: fixing it with ipfs config makes ipfs id work again' '
	hl_ipfs 0 config --json "$KEY.Bitswap.MaxOutstandingBytesPerPeer" "\"2MiB\"" 2>fix.err &&
	hl_grep_fixed fix.err "WARNING: highload:" &&
	hl_ipfs 0 id >/dev/null 2>id.err &&
	test_must_be_empty id.err &&
	hl_ipfs 0 config "$KEY.Bitswap.MaxOutstandingBytesPerPeer" >value 2>value.err &&
	echo 2MiB >expected &&
	test_cmp expected value &&
	test_must_be_empty value.err &&
	hl_ipfs 0 stats highload >stats.out &&
	grep -E "^  Bitswap.MaxOutstandingBytesPerPeer +2MiB$" stats.out
'

test_expect_success 'unknown key: refused with a suggestion' '
	set_config "{\"Bitswap\":{\"MaxOutstandingBytes\":\"1MiB\"}}" &&
	refused "highload: Config.Bitswap.MaxOutstandingBytes: unknown key; did you mean \"MaxOutstandingBytesPerPeer\"?"
'

test_expect_success 'unknown key far from any: refused with the accepted keys' '
	set_config "{\"Bitswap\":{\"Zzz\":1}}" &&
	refused_by_id "highload: Config.Bitswap.Zzz: unknown key; accepted keys: Enabled, MaxOutstandingBytesPerPeer,"
'

test_expect_success 'TaskWorkerCount 0: out of range' '
	set_config "{\"Bitswap\":{\"TaskWorkerCount\":0}}" &&
	refused "highload: Config.Bitswap.TaskWorkerCount: 0 is out of range; accepted: 1 to 512"
'

test_expect_success 'TaskWorkerCount 513: out of range' '
	set_config "{\"Bitswap\":{\"TaskWorkerCount\":513}}" &&
	refused_by_id "highload: Config.Bitswap.TaskWorkerCount: 513 is out of range; accepted: 1 to 512"
'

test_expect_success 'TaskWorkerCount as a string: not an integer' '
	set_config "{\"Bitswap\":{\"TaskWorkerCount\":\"8\"}}" &&
	refused_by_id "highload: Config.Bitswap.TaskWorkerCount: \"8\" is not an integer"
'

test_expect_success 'a section of the wrong type (a list): refused' '
	set_config "{\"Bitswap\":[]}" &&
	refused "highload: Config.Bitswap: expected an object of settings, got a list"
'

test_expect_success 'a section of the wrong type (a number): refused' '
	set_config "{\"Health\":3}" &&
	refused_by_id "highload: Config.Health: expected an object of settings, got 3"
'

test_expect_success 'the whole config of the wrong type: refused' '
	set_config "\"fast\"" &&
	refused_by_id "highload: Config: expected an object of settings, got \"fast\""
'

test_expect_success 'several problems: each is reported' '
	set_config "{\"Bitswap\":{\"TaskWorkerCount\":0,\"TargetMessageSize\":\"12QB\"},\"Metrics\":{\"Enabled\":\"yes\"}}" &&
	refused_by_id "highload: Config.Bitswap.TaskWorkerCount: 0 is out of range" &&
	hl_grep_fixed id.err "highload: Config.Bitswap.TargetMessageSize: \"12QB\" is not a size" &&
	hl_grep_fixed id.err "highload: Config.Metrics.Enabled: \"yes\" is not a boolean"
'

test_expect_success 'ipfs config with global options before it still warns and works' '
	hl_ipfs 0 --enc=json config "$KEY.Bitswap.TaskWorkerCount" >enc.out 2>enc.err &&
	hl_grep_fixed enc.out "\"Value\":0" &&
	hl_grep_fixed enc.err "WARNING: highload:" &&
	hl_ipfs 0 --timeout 30s config "$KEY.Bitswap.TaskWorkerCount" >timeout.out 2>timeout.err &&
	hl_grep_fixed timeout.err "WARNING: highload:"
'

# Kubo's global options that take a separate value include --api-auth and
# --cid-base; isConfigCommand (plugin/highload.go) does not list them, so it
# takes their value for the command name and refuses the config.
test_expect_success 'ipfs --cid-base X config ... still works with a bad value' '
	hl_ipfs 0 --cid-base base32 config "$KEY.Bitswap.TaskWorkerCount" >cb.out 2>cb.err &&
	echo 0 >expected &&
	test_cmp expected cb.out
'

test_expect_success 'ipfs --api-auth X config ... still works with a bad value' '
	hl_ipfs 0 --api-auth secret config "$KEY.Bitswap.TaskWorkerCount" >aa.out 2>aa.err &&
	echo 0 >expected &&
	test_cmp expected aa.out
'

test_expect_success 'ipfs config profile apply refuses to overwrite a bad config' '
	test_must_fail hl_ipfs 0 config profile apply highload >apply.out 2>apply.err &&
	hl_grep_fixed apply.err "profile highload: the existing config is invalid, fix it first" &&
	hl_ipfs 0 config "$KEY.Bitswap.TaskWorkerCount" >value 2>/dev/null &&
	echo 0 >expected &&
	test_cmp expected value
'

test_expect_success 'an empty config is valid again; the daemon runs' '
	set_config "{}" &&
	hl_ipfs 0 id >/dev/null &&
	hl_start_daemon 0 &&
	hl_ipfs 0 stats highload >stats.out &&
	hl_grep_fixed stats.out "node:   online" &&
	hl_stop_daemon 0
'

# --- the tiered datastore type --------------------------------------------

# tiered_spec: replace the /blocks mount of node 0's Datastore.Spec with a
# tiered one.
tiered_spec() {
	hl_json_edit "$(hl_node_path 0)/config" '
mounts = d["Datastore"]["Spec"]["mounts"]
hits = [m for m in mounts if m.get("mountpoint") == "/blocks"]
assert len(hits) == 1, mounts
hits[0].clear()
hits[0].update({"mountpoint": "/blocks", "type": "tiered", "path": "blocks"})'
}

# A tiered mount written like a flatfs one: "path" is not a tiered field.
TIERED_MSG='tiered: path: unknown field'

test_expect_success PYTHON3 'save the config and datastore_spec' '
	cp "$(hl_node_path 0)/config" config.orig &&
	cp "$(hl_node_path 0)/datastore_spec" datastore_spec.orig
'

test_expect_success PYTHON3 'a tiered /blocks mount is refused by ipfs id and ipfs daemon' '
	tiered_spec &&
	grep -F "\"tiered\"" "$(hl_node_path 0)/config" &&
	refused "$TIERED_MSG"
'

test_expect_success PYTHON3 'still refused when datastore_spec matches the config' '
	printf "%s" "{\"mounts\":[{\"mountpoint\":\"/blocks\",\"path\":\"blocks\",\"type\":\"tiered\"},{\"mountpoint\":\"/\",\"path\":\"datastore\",\"type\":\"levelds\"}],\"type\":\"mount\"}" \
		>"$(hl_node_path 0)/datastore_spec" &&
	refused "$TIERED_MSG"
'

test_expect_success PYTHON3,STOCK_BIN 'plain Kubo does not know the tiered type at all' '
	hl_use_bin 0 "$HIGHLOAD_IPFS_STOCK_BIN" &&
	test_when_finished "hl_use_bin 0 \"\"" &&
	test_must_fail hl_ipfs 0 id 2>stock.err &&
	hl_grep_fixed stock.err "unknown datastore type: tiered" &&
	! grep -F "$TIERED_MSG" stock.err
'

test_expect_success PYTHON3 'restoring the flatfs spec makes the repo usable again' '
	cp config.orig "$(hl_node_path 0)/config" &&
	cp datastore_spec.orig "$(hl_node_path 0)/datastore_spec" &&
	hl_ipfs 0 id >/dev/null &&
	hl_start_daemon 0 &&
	hl_stop_daemon 0
'

test_done
