#!/usr/bin/env bash
#
# The tiered datastore: the highload profile makes /blocks a tiered store;
# a bad tiered spec is refused naming the field; `ipfs stats highload
# tiered` shows the tiers in text and JSON, offline and from a daemon.

test_description="the tiered datastore"

. "$(dirname "$0")/lib/test-lib.sh"

test_expect_success PYTHON3 'ipfs init --profile=highload makes /blocks tiered' '
	hl_init_node 0 --profile=highload &&
	hl_ipfs 0 config --json Datastore.Spec >spec.json &&
	"$HL_PYTHON" -c "import json,sys; m=json.load(open(\"spec.json\"))[\"mounts\"][0]; sys.exit(0 if m[\"type\"]==\"tiered\" and m[\"tiers\"][0][\"type\"]==\"memory\" and m[\"tiers\"][1][\"child\"][\"type\"]==\"flatfs\" else 1)"
'

test_expect_success 'the disk identity is the flatfs one, as with plain Kubo' '
	hl_grep_fixed "$(hl_node_path 0)/datastore_spec" "{\"mountpoint\":\"/blocks\",\"path\":\"blocks\",\"shardFunc\":\"/repo/flatfs/shard/v1/next-to-last/2\",\"type\":\"flatfs\"}"
'

test_expect_success 'stats offline: text names the tiers' '
	echo "some block data" >f &&
	hl_ipfs 0 add -Q f >cid &&
	hl_ipfs 0 stats highload tiered >out &&
	hl_grep_fixed out "tiered datastore" &&
	hl_grep_fixed out "memory" &&
	hl_grep_fixed out "flatfs" &&
	hl_grep_fixed out "location index:"
'

test_expect_success PYTHON3 'stats from the daemon in JSON' '
	hl_start_daemon 0 &&
	test_when_finished "hl_stop_daemon 0" &&
	hl_ipfs 0 cat "$(cat cid)" >got &&
	test_cmp f got &&
	hl_ipfs 0 stats highload tiered --enc=json >out.json &&
	hl_json_assert out.json Open=true Stats.Tiers.memory.Kind="\"memory\"" Stats.Tiers.flatfs.Kind="\"durable\""
'

test_expect_success PYTHON3 'a tier below the minimum capacity is refused, naming the field' '
	hl_json_edit "$(hl_node_path 0)/config" "d[\"Datastore\"][\"Spec\"][\"mounts\"][0][\"tiers\"][1][\"capacity\"] = \"1KiB\"" &&
	test_must_fail hl_ipfs 0 repo stat 2>err &&
	hl_grep_fixed err "tiers[1].capacity" &&
	hl_grep_fixed err "below the minimum"
'

test_expect_success PYTHON3 'an unknown tier type is refused, naming the field' '
	hl_json_edit "$(hl_node_path 0)/config" "d[\"Datastore\"][\"Spec\"][\"mounts\"][0][\"tiers\"][1][\"capacity\"] = \"1GiB\"; d[\"Datastore\"][\"Spec\"][\"mounts\"][0][\"tiers\"][0][\"type\"] = \"ssd\"" &&
	test_must_fail hl_ipfs 0 repo stat 2>err &&
	hl_grep_fixed err "tiers[0].type: unknown tier type ssd"
'

test_done
