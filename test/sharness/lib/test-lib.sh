# test-lib.sh: sharness setup and multi-node helpers for the highload tests.
#
# Source it from a test script after setting test_description:
#
#	test_description="..."
#	. "$(dirname "$0")/lib/test-lib.sh"
#
# Environment:
#   SHARNESS_LIB                  sharness.sh to load
#                                 (default /usr/share/sharness/sharness.sh)
#   HIGHLOAD_IPFS_BIN             our Kubo (default <repo>/build/bin/ipfs)
#   HIGHLOAD_IPFS_STOCK_BIN       plain Kubo (default <repo>/build/bin/ipfs-stock)
#   HIGHLOAD_IPFS_FROM_SOURCE_BIN Kubo built in-tree with our preload_list
#                                 (default <repo>/build/bin/ipfs-from-source)
#   HL_DAEMON_TIMEOUT             seconds to wait for a daemon to come up or
#                                 go down (default 30)
#
# Nodes are numbered; node N lives in $SHARNESS_TRASH_DIRECTORY/nodeN and
# every helper sets IPFS_PATH for it. Each node may use its own binary
# (hl_use_bin), so plain and highload Kubo can run side by side.

# --- paths, resolved before sharness changes directory ----------------------

unset CDPATH
HL_TEST_DIR=$(cd "$(dirname "$0")" && pwd) || exit 1
HL_REPO_ROOT=$(cd "$HL_TEST_DIR/../.." && pwd) || exit 1

# hl_abspath PATH: PATH made absolute against the directory we started in.
hl_abspath() {
	case "$1" in
	/*) printf '%s\n' "$1" ;;
	*) printf '%s\n' "$PWD/$1" ;;
	esac
}

HIGHLOAD_IPFS_BIN=$(hl_abspath "${HIGHLOAD_IPFS_BIN:-$HL_REPO_ROOT/build/bin/ipfs}")
HIGHLOAD_IPFS_STOCK_BIN=$(hl_abspath "${HIGHLOAD_IPFS_STOCK_BIN:-$HL_REPO_ROOT/build/bin/ipfs-stock}")
HIGHLOAD_IPFS_FROM_SOURCE_BIN=$(hl_abspath "${HIGHLOAD_IPFS_FROM_SOURCE_BIN:-$HL_REPO_ROOT/build/bin/ipfs-from-source}")
export HIGHLOAD_IPFS_BIN HIGHLOAD_IPFS_STOCK_BIN HIGHLOAD_IPFS_FROM_SOURCE_BIN

: "${HL_DAEMON_TIMEOUT:=30}"

# Trash directories and test-results go next to the test scripts, whatever
# the directory the script was started from. The scripts end in .sh.
: "${SHARNESS_TEST_DIRECTORY:=$HL_TEST_DIR}"
SHARNESS_TEST_EXTENSION=sh
export SHARNESS_TEST_DIRECTORY SHARNESS_TEST_EXTENSION

# Never talk to anything but loopback, and never read the user's repo.
IPFS_TELEMETRY=off
DO_NOT_TRACK=1
export IPFS_TELEMETRY DO_NOT_TRACK
unset IPFS_PATH API_ORIGIN

. "${SHARNESS_LIB:-/usr/share/sharness/sharness.sh}" || exit 1

# --- prerequisites ------------------------------------------------------------

test -x "$HIGHLOAD_IPFS_STOCK_BIN" && test_set_prereq STOCK_BIN
test -x "$HIGHLOAD_IPFS_FROM_SOURCE_BIN" && test_set_prereq FROM_SOURCE_BIN
command -v python3 >/dev/null 2>&1 && test_set_prereq PYTHON3
command -v curl >/dev/null 2>&1 && test_set_prereq CURL

# Our binary is not a prerequisite: without it every test fails, loudly.
if ! test -x "$HIGHLOAD_IPFS_BIN"; then
	echo "# test-lib: $HIGHLOAD_IPFS_BIN is missing or not executable; run 'make build' at the repo root"
fi

# --- per-node state -------------------------------------------------------------

# hl_node_path N: the repo directory of node N.
hl_node_path() {
	printf '%s\n' "$SHARNESS_TRASH_DIRECTORY/node$1"
}

# hl_daemon_log N: the file the last daemon of node N writes to.
hl_daemon_log() {
	printf '%s\n' "$SHARNESS_TRASH_DIRECTORY/daemon$1.log"
}

# hl_use_bin N BINARY: node N runs BINARY instead of $HIGHLOAD_IPFS_BIN.
hl_use_bin() {
	eval "HL_BIN_$1=\$2"
}

# hl_node_bin N: the binary node N runs.
hl_node_bin() {
	eval "printf '%s\n' \"\${HL_BIN_$1:-\$HIGHLOAD_IPFS_BIN}\""
}

# hl_daemon_pid N: PID of node N's running daemon, empty when none.
hl_daemon_pid() {
	eval "printf '%s\n' \"\${HL_PID_$1:-}\""
}

# hl_ipfs N ARGS...: run ipfs (node N's binary) against node N.
hl_ipfs() {
	local n=$1
	shift
	IPFS_PATH=$(hl_node_path "$n") "$(hl_node_bin "$n")" "$@"
}

# hl_diag MESSAGE...: a TAP diagnostic line, shown even without --verbose.
hl_diag() {
	printf '# %s\n' "$*" >&5
	printf '%s\n' "$*" >&2
}

# hl_init_node N [init args...]: create node N's repo with the test profile
# (loopback only, port 0 for API, Gateway and Swarm, no bootstrap, no MDNS).
# A --profile=X argument is merged into --profile=test,X.
hl_init_node() {
	local n=$1 profile=test count a
	shift
	count=$#
	for a in "$@"; do
		case "$a" in
		--profile=*) profile="$profile,${a#--profile=}" ;;
		*) set -- "$@" "$a" ;;
		esac
	done
	shift "$count"
	hl_ipfs "$n" init --profile="$profile" "$@" >"$SHARNESS_TRASH_DIRECTORY/init$n.out" || {
		echo >&2 "hl_init_node $n: ipfs init --profile=$profile $* failed"
		return 1
	}
}

# hl_alive PID: whether PID is a running (not zombie) process. A child that
# exited but was not waited for yet is a zombie, which kill -0 would report
# as alive.
hl_alive() {
	local state
	test -r "/proc/$1/stat" || return 1
	state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
	test -n "$state" && test "$state" != Z && test "$state" != X
}

# hl_wait_dead PID SECONDS: poll until PID is gone; false after SECONDS.
hl_wait_dead() {
	local deadline=$(( $(date +%s) + $2 ))
	while hl_alive "$1"; do
		test "$(date +%s)" -lt "$deadline" || return 1
		sleep 0.1
	done
	return 0
}

# hl_api_addr N: the multiaddr of node N's running API, from $IPFS_PATH/api.
hl_api_addr() {
	cat "$(hl_node_path "$1")/api" 2>/dev/null
}

# hl_api_url N: http://host:port of node N's API.
hl_api_url() {
	hl_api_addr "$1" |
		sed -n 's#^/ip4/\([0-9.]*\)/tcp/\([0-9]*\)$#http://\1:\2#p' | grep .
}

hl__record_pid() {
	eval "HL_PID_$1=\$2"
	HL_ALL_PIDS="$HL_ALL_PIDS $2"
}

hl__forget_pid() {
	local keep= p
	eval "HL_PID_$1="
	for p in $HL_ALL_PIDS; do
		test "$p" = "$2" || keep="$keep $p"
	done
	HL_ALL_PIDS=$keep
}

# hl__spawn N [daemon args...]: start node N's daemon in the background and
# record its PID. No descriptor of the harness is inherited, so that prove
# never waits on a daemon.
hl__spawn() {
	local n=$1 path
	shift
	if test -n "$(hl_daemon_pid "$n")"; then
		echo >&2 "node $n: a daemon is already running (pid $(hl_daemon_pid "$n"))"
		return 1
	fi
	path=$(hl_node_path "$n")
	# No daemon of ours runs on this repo, so an api file is stale: without
	# this, the wait below could read a dead address.
	rm -f "$path/api"
	IPFS_PATH=$path "$(hl_node_bin "$n")" daemon "$@" \
		>"$(hl_daemon_log "$n")" 2>&1 </dev/null 3>&- 4>&- 5>&- 6>&- &
	hl__record_pid "$n" $!
	printf '%s\n' $! >"$SHARNESS_TRASH_DIRECTORY/daemon$n.pid"
}

hl__show_log() {
	sed 's/^/  | /' "$(hl_daemon_log "$1")" >&2
}

# hl_start_daemon N [daemon args...]: start node N's daemon and wait (at most
# HL_DAEMON_TIMEOUT seconds) until its API file exists and `ipfs id` through
# that API answers. Fails, showing the daemon's log, if the daemon exits or
# does not answer in time (it is stopped then).
hl_start_daemon() {
	local n=$1 pid api rc deadline
	hl__spawn "$@" || return 1
	pid=$(hl_daemon_pid "$n")
	deadline=$(( $(date +%s) + HL_DAEMON_TIMEOUT ))
	while :; do
		if ! hl_alive "$pid"; then
			wait "$pid"
			rc=$?
			hl__forget_pid "$n" "$pid"
			echo >&2 "node $n: daemon (pid $pid) exited with $rc before its API answered; log:"
			hl__show_log "$n"
			return 1
		fi
		# --api: a plain `ipfs id` would also succeed offline, without
		# the daemon.
		api=$(hl_api_addr "$n") && test -n "$api" &&
			hl_ipfs "$n" --api="$api" id >/dev/null 2>&1 &&
			return 0
		if test "$(date +%s)" -ge "$deadline"; then
			echo >&2 "node $n: daemon (pid $pid) did not answer within ${HL_DAEMON_TIMEOUT}s; log:"
			hl__show_log "$n"
			hl_stop_daemon "$n"
			return 1
		fi
		sleep 0.1
	done
}

# hl__kill PID: SIGTERM, then SIGKILL after a bounded wait. By PID only.
hl__kill() {
	kill -TERM "$1" 2>/dev/null
	hl_wait_dead "$1" 10 && return 0
	kill -KILL "$1" 2>/dev/null
	hl_wait_dead "$1" 10
}

# hl_stop_daemon N: stop node N's daemon with `ipfs shutdown`, then SIGTERM
# and SIGKILL by PID if it is still alive after a bounded wait, then reap it.
# The daemon is gone either way; the function fails unless `ipfs shutdown`
# stopped it and it exited 0.
hl_stop_daemon() {
	local n=$1 pid api rc ok=true
	pid=$(hl_daemon_pid "$n")
	if test -z "$pid"; then
		echo >&2 "node $n: no daemon to stop"
		return 1
	fi
	api=$(hl_api_addr "$n")
	if test -z "$api" || ! hl_ipfs "$n" --api="$api" shutdown >&2; then
		echo >&2 "node $n: ipfs shutdown failed"
		ok=false
	fi
	if ! hl_wait_dead "$pid" "$HL_DAEMON_TIMEOUT"; then
		echo >&2 "node $n: daemon (pid $pid) still up ${HL_DAEMON_TIMEOUT}s after ipfs shutdown; killing it"
		ok=false
		hl__kill "$pid"
	fi
	wait "$pid"
	rc=$?
	hl__forget_pid "$n" "$pid"
	if test "$rc" != 0; then
		echo >&2 "node $n: daemon (pid $pid) exited with $rc; log:"
		hl__show_log "$n"
		ok=false
	fi
	$ok
}

# hl_daemon_must_fail N [daemon args...]: start node N's daemon and expect it
# to exit non-zero by itself within HL_DAEMON_TIMEOUT seconds, leaving no api
# file. It is killed (by PID) if it is still up then. Its output is in
# $(hl_daemon_log N).
hl_daemon_must_fail() {
	local n=$1 pid rc
	hl__spawn "$@" || return 1
	pid=$(hl_daemon_pid "$n")
	if ! hl_wait_dead "$pid" "$HL_DAEMON_TIMEOUT"; then
		echo >&2 "node $n: daemon (pid $pid) still running after ${HL_DAEMON_TIMEOUT}s; killing it"
		hl__kill "$pid"
		wait "$pid"
		hl__forget_pid "$n" "$pid"
		hl__show_log "$n"
		return 1
	fi
	wait "$pid"
	rc=$?
	hl__forget_pid "$n" "$pid"
	if test "$rc" = 0; then
		echo >&2 "node $n: daemon exited 0; expected a failure; log:"
		hl__show_log "$n"
		return 1
	fi
	if test -e "$(hl_node_path "$n")/api"; then
		echo >&2 "node $n: the failed daemon left an api file"
		return 1
	fi
	echo >&2 "node $n: daemon exited with $rc, as expected"
}

# hl_kill_all_daemons: stop every daemon still recorded, by PID. Used at exit.
hl_kill_all_daemons() {
	local p
	for p in $HL_ALL_PIDS; do
		if hl_alive "$p"; then
			hl_diag "test-lib: stopping leftover daemon pid $p"
			hl__kill "$p"
		fi
		wait "$p" 2>/dev/null
	done
	HL_ALL_PIDS=
	return 0
}

HL_ALL_PIDS=
# A successful run: stop daemons before test_done removes the trash directory.
cleanup hl_kill_all_daemons
# Any other exit (failed tests, an error, a signal): stop daemons, then let
# sharness report as it would have.
trap 'hl__exit_rc=$?; hl_kill_all_daemons; (exit $hl__exit_rc); die' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- multi-node helpers ---------------------------------------------------------

# hl_peer_id N: node N's peer ID.
hl_peer_id() {
	hl_ipfs "$1" id -f '<id>'
}

# hl_loopback_addr N: node N's /ip4/127.0.0.1/tcp/... swarm address with /p2p/.
hl_loopback_addr() {
	hl_ipfs "$1" id -f '<addrs>' | grep '^/ip4/127\.0\.0\.1/tcp/[0-9]*/p2p/' | head -n 1 | grep .
}

# hl_connect A B: connect node A to node B over loopback, and wait (bounded)
# until A lists B among its peers.
hl_connect() {
	local addr peer deadline
	addr=$(hl_loopback_addr "$2") || {
		echo >&2 "hl_connect: node $2 has no 127.0.0.1 TCP address"
		return 1
	}
	peer=${addr##*/p2p/}
	hl_ipfs "$1" swarm connect "$addr" >&2 || return 1
	deadline=$(( $(date +%s) + 10 ))
	until hl_ipfs "$1" swarm peers | grep -q "/p2p/$peer\$"; do
		if test "$(date +%s)" -ge "$deadline"; then
			echo >&2 "hl_connect: node $1 does not list node $2 ($peer) as a peer"
			return 1
		fi
		sleep 0.1
	done
}

# --- JSON helpers -----------------------------------------------------------------

# HL_PYTHON: the python3 interpreter itself; a pyenv shim costs seconds a call.
HL_PYTHON=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) || HL_PYTHON=python3

# hl_json_assert FILE CHECK...: FILE holds one JSON document, and each CHECK
# holds for it. A CHECK is PATH=JSON (the value at PATH equals the JSON
# value) or !PATH (PATH is absent). PATH is dot-separated keys; in a list of
# objects, a key selects the object whose "Name" is that key:
#   hl_json_assert out.json Loaded=true Config.Bitswap.TaskWorkerCount=8 \
#       Components.bitswap.Status='"active"' '!Config'
# With no CHECK, FILE only has to be valid JSON.
hl_json_assert() {
	"$HL_PYTHON" - "$@" <<'PY'
import json, sys

path = sys.argv[1]
try:
    with open(path) as f:
        doc = json.load(f)
except Exception as e:
    sys.exit("%s: not one valid JSON document: %s" % (path, e))

MISSING = object()

def lookup(cur, keys):
    for k in keys.split("."):
        if isinstance(cur, dict):
            cur = cur.get(k, MISSING)
        elif isinstance(cur, list):
            hits = [x for x in cur if isinstance(x, dict) and x.get("Name") == k]
            cur = hits[0] if hits else MISSING
        else:
            cur = MISSING
        if cur is MISSING:
            break
    return cur

bad = 0
for check in sys.argv[2:]:
    if check.startswith("!"):
        got = lookup(doc, check[1:])
        if got is not MISSING:
            print("%s: %s is present: %s" % (path, check[1:], json.dumps(got)), file=sys.stderr)
            bad = 1
        continue
    keys, sep, want = check.partition("=")
    if not sep:
        sys.exit("hl_json_assert: bad check %r" % check)
    want = json.loads(want)
    got = lookup(doc, keys)
    if got is MISSING:
        print("%s: %s is absent; want %s" % (path, keys, json.dumps(want)), file=sys.stderr)
        bad = 1
    elif got != want or type(got) is not type(want):
        print("%s: %s is %s; want %s" % (path, keys, json.dumps(got), json.dumps(want)), file=sys.stderr)
        bad = 1
if bad:
    print("--- %s:" % path, file=sys.stderr)
    print(json.dumps(doc, indent=2), file=sys.stderr)
sys.exit(bad)
PY
}

# hl_json_edit FILE CODE: run Python CODE on the JSON document in FILE (bound
# to d) and write the result back.
hl_json_edit() {
	"$HL_PYTHON" -c 'import json, sys
p = sys.argv[1]
with open(p) as f:
    d = json.load(f)
exec(sys.argv[2])
with open(p, "w") as f:
    json.dump(d, f, indent=2)' "$1" "$2"
}

# hl_grep_fixed FILE STRING: grep -F with the file's content on failure.
hl_grep_fixed() {
	grep -F -e "$2" "$1" >/dev/null || {
		echo >&2 "expected to find in $1: $2"
		echo >&2 "--- $1:"
		cat >&2 "$1"
		return 1
	}
}
