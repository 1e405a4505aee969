#!/usr/bin/env bash
#
# Kubo built from its own tree with our lines appended to its
# plugin/loader/preload_list (build/from-source.sh, `make kubo-from-source`)
# must carry the highload plugin like build/kubo does.

test_description="Kubo built in-tree with the highload preload_list entry"

. "$(dirname "$0")/lib/test-lib.sh"

# Node 0 runs the from-source binary.
hl_use_bin 0 "$HIGHLOAD_IPFS_FROM_SOURCE_BIN"

# This test must not skip when the binary is missing: the root Makefile's
# sharness target builds it first, so its absence is a failure.
test_expect_success 'ipfs-from-source exists and is executable' '
	if ! test -x "$HIGHLOAD_IPFS_FROM_SOURCE_BIN"; then
		hl_diag "$HIGHLOAD_IPFS_FROM_SOURCE_BIN is missing or not executable:" \
			"build it with make kubo-from-source at the repo root (make sharness does)"
		false
	fi
'

test_expect_success FROM_SOURCE_BIN 'ipfs-from-source version works and is Kubo 0.43' '
	"$HIGHLOAD_IPFS_FROM_SOURCE_BIN" version >version &&
	grep -E "^ipfs version 0\.43\." version
'

test_expect_success FROM_SOURCE_BIN 'init a repo with it' '
	hl_init_node 0
'

test_expect_success FROM_SOURCE_BIN 'stats highload: the plugin is loaded' '
	hl_ipfs 0 stats highload >stats &&
	hl_grep_fixed stats "highload plugin" &&
	hl_grep_fixed stats "plugin: loaded" &&
	grep -E "^  bitswap +idle " stats
'

test_expect_success FROM_SOURCE_BIN,PYTHON3 'stats highload --enc=json: Loaded, with the default config' '
	hl_ipfs 0 stats highload --enc=json >stats.json &&
	hl_json_assert stats.json Plugin=\"highload\" Loaded=true Online=false \
		Config.Bitswap.TaskWorkerCount=8
'

test_expect_success FROM_SOURCE_BIN 'it validates the plugin config' '
	hl_ipfs 0 config --json Plugins.Plugins.highload.Config.Bitswap.TaskWorkerCount 0 2>/dev/null &&
	test_must_fail hl_ipfs 0 id 2>id.err &&
	hl_grep_fixed id.err "highload: Config.Bitswap.TaskWorkerCount: 0 is out of range" &&
	hl_ipfs 0 config --json Plugins.Plugins.highload.Config {} 2>/dev/null &&
	hl_ipfs 0 id >/dev/null
'

test_expect_success FROM_SOURCE_BIN 'it knows the highload profile' '
	hl_ipfs 0 config profile apply highload >apply.out &&
	hl_ipfs 0 config Plugins.Plugins.highload.Config.Bitswap.TargetMessageSize >value &&
	echo 256KiB >expected &&
	test_cmp expected value
'

test_expect_success FROM_SOURCE_BIN 'its daemon runs the plugin online' '
	hl_start_daemon 0 &&
	hl_ipfs 0 stats highload >online &&
	hl_grep_fixed online "node:   online" &&
	grep -E "^  bitswap +active " online &&
	hl_stop_daemon 0
'

test_done
