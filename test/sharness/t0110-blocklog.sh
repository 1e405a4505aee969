#!/usr/bin/env bash
#
# The blocklog datastore as a tiered store's fast tier: a repo whose
# /blocks is memory + blocklog + flatfs stores and serves blocks offline and
# from a daemon, `ipfs stats highload` lists the log, `repo verify` and
# `repo gc` work on it, and a bad blocklog field is refused naming it.

test_description="the blocklog datastore"

. "$(dirname "$0")/lib/test-lib.sh"

THREE_TIERS='d["Datastore"]["Spec"]["mounts"][0]["tiers"] = [{"type": "memory", "capacity": "64MiB"}, {"name": "log", "capacity": "1GiB", "child": {"type": "blocklog", "path": "blocklog"}}, {"name": "flatfs", "capacity": "10GiB", "child": {"type": "flatfs", "path": "blocks", "sync": False, "shardFunc": "/repo/flatfs/shard/v1/next-to-last/2"}}]'
SPEC='{"mounts":[{"mountpoint":"/blocks","tiers":[{"path":"blocklog","type":"blocklog"},{"path":"blocks","shardFunc":"/repo/flatfs/shard/v1/next-to-last/2","type":"flatfs"}],"type":"tiered"},{"mountpoint":"/","path":"datastore","type":"levelds"}],"type":"mount"}'

test_expect_success PYTHON3 'a fresh repo gets a blocklog fast tier' '
	hl_init_node 0 --profile=highload &&
	hl_json_edit "$(hl_node_path 0)/config" "$THREE_TIERS" &&
	printf "%s" "$SPEC" >"$(hl_node_path 0)/datastore_spec"
'

test_expect_success PYTHON3 'blocks land in the log and read back offline' '
	"$HL_PYTHON" -c "import os,sys; sys.stdout.buffer.write(os.urandom(300000))" >f &&
	hl_ipfs 0 add -Q --chunker=size-16384 f >cid &&
	hl_ipfs 0 cat "$(cat cid)" >got &&
	test_cmp f got &&
	test -f "$(hl_node_path 0)/blocklog/00000001.log" &&
	hl_ipfs 0 stats highload tiered >out &&
	grep -E "^  log +durable" out
'

test_expect_success 'repo verify and gc work on the log' '
	hl_ipfs 0 repo verify >verify &&
	hl_grep_fixed verify "all blocks validated" &&
	hl_ipfs 0 pin rm "$(cat cid)" &&
	hl_ipfs 0 repo gc -q >gc &&
	test -s gc &&
	test_must_fail hl_ipfs 0 block stat --offline "$(cat cid)"
'

test_expect_success 'the daemon lists the log as active' '
	hl_start_daemon 0 &&
	test_when_finished "hl_stop_daemon 0" &&
	hl_ipfs 0 add -Q f >cid2 &&
	hl_ipfs 0 stats highload >stats &&
	grep -E "^  blocklog +active " stats
'

test_expect_success PYTHON3 'a bad blocklog field is refused, naming it' '
	hl_json_edit "$(hl_node_path 0)/config" "d[\"Datastore\"][\"Spec\"][\"mounts\"][0][\"tiers\"][1][\"child\"][\"segmentSize\"] = \"1KiB\"" &&
	test_must_fail hl_ipfs 0 repo stat 2>err &&
	hl_grep_fixed err "segmentSize" &&
	hl_json_edit "$(hl_node_path 0)/config" "del d[\"Datastore\"][\"Spec\"][\"mounts\"][0][\"tiers\"][1][\"child\"][\"segmentSize\"]; d[\"Datastore\"][\"Spec\"][\"mounts\"][0][\"tiers\"][1][\"child\"][\"synce\"] = True" &&
	test_must_fail hl_ipfs 0 repo stat 2>err &&
	hl_grep_fixed err "unknown field \"synce\""
'

test_expect_success PYTHON3 'ipfs init --profile=highload-log writes memory + log + flatfs, and the repo works' '
	hl_init_node 1 --profile=highload-log &&
	"$HL_PYTHON" -c "import json,sys; t=json.load(open(sys.argv[1]))[\"Datastore\"][\"Spec\"][\"mounts\"][0][\"tiers\"]; print(\" \".join(x.get(\"child\",{}).get(\"type\",x.get(\"type\",\"\")) for x in t))" "$(hl_node_path 1)/config" >tiers &&
	echo "memory blocklog flatfs" >tiers.want &&
	test_cmp tiers.want tiers &&
	grep -q blocklog "$(hl_node_path 1)/datastore_spec" &&
	hl_ipfs 1 add -Q --chunker=size-16384 f >cid3 &&
	hl_ipfs 1 cat "$(cat cid3)" >got3 &&
	test_cmp f got3 &&
	test -f "$(hl_node_path 1)/blocklog/00000001.log" &&
	hl_ipfs 1 repo verify >verify1 &&
	hl_grep_fixed verify1 "all blocks validated"
'

test_expect_success 'highload-log is init-only: re-applying keeps the layout, and Kubo refuses to add the log tier to an existing repo' '
	hl_ipfs 1 config profile apply highload-log >again.out &&
	hl_init_node 2 --profile=highload &&
	test_must_fail hl_ipfs 2 config profile apply highload-log 2>apply.err &&
	hl_grep_fixed apply.err "changes the datastore layout" &&
	hl_ipfs 2 repo stat >stat2
'

test_done
