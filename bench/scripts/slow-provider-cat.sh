#!/bin/bash
# slow-provider-cat.sh: `ipfs cat` from two providers of the same file, one
# behind a rate-limited link: the measurement behind docs/bitswap.md
# "Nineteenth pass" (the direct wants' per-peer windows).
#
# Needs root: it creates three network namespaces (fetcher, fast provider,
# slow provider), joins the fetcher's to each provider's by a veth pair,
# and puts a tbf qdisc at RATE on the slow provider's side. Both providers
# run PROVIDER_BIN (profiles $PROVIDER_PROFILES, test,highload-log unless
# set; `test` for a stock PROVIDER_BIN); the fetcher runs
# FETCHER_BIN with FETCHER_PROFILES. For each of N random files of SIZE MiB
# (256 KiB chunks, CIDv1, raw leaves), added to both providers, the fetcher
# cats it through its RPC API and the script prints MiB/s, the time to the
# first byte and each provider's share of the bytes sent (their `bitswap
# stat` DataSent). MODE slowfirst (the default) first gets the root from the
# slow provider alone, then connects the fast one: the slow provider is the
# root's sender. MODE race connects both and lets them race for the root.
# It stops its daemons by PID and deletes its namespaces on exit.
#
# usage: slow-provider-cat.sh PROVIDER_BIN FETCHER_BIN FETCHER_PROFILES N SIZE_MiB RATE DIR [MODE]
# e.g.:  slow-provider-cat.sh build/bin/ipfs build/bin/ipfs test,highload-log 3 32 20mbit /tmp/spc
#        slow-provider-cat.sh build/bin/ipfs build/bin/ipfs-stock test 3 32 20mbit /tmp/spc race
set -u
[ $# -ge 7 ] || { sed -n '2,22p' "$0"; exit 2; }
PB=$1; FB=$2; FP=$3; N=$4; SIZE=$5; RATE=$6; D=$7; MODE=${8:-slowfirst}
case $MODE in slowfirst|race) ;; *) echo "MODE must be slowfirst or race, not $MODE" >&2; exit 2;; esac
NF=hlspf-$$; NA=hlspa-$$; NS=hlsps-$$
export GOLOG_LOG_LEVEL=error
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	ip netns del $NF 2>/dev/null; ip netns del $NA 2>/dev/null; ip netns del $NS 2>/dev/null
}
trap cleanup EXIT
rm -rf "$D"; mkdir -p "$D"
for n in $NF $NA $NS; do ip netns add $n || exit 1; ip netns exec $n ip link set lo up; done
ip link add va$$ type veth peer name fa$$ && ip link add vs$$ type veth peer name fs$$ || exit 1
ip link set va$$ netns $NA; ip link set vs$$ netns $NS; ip link set fa$$ netns $NF; ip link set fs$$ netns $NF
ip netns exec $NA sh -c "ip addr add 10.78.1.1/24 dev va$$ && ip link set va$$ up" || exit 1
ip netns exec $NS sh -c "ip addr add 10.78.2.1/24 dev vs$$ && ip link set vs$$ up" || exit 1
ip netns exec $NF sh -c "ip addr add 10.78.1.2/24 dev fa$$ && ip link set fa$$ up && ip addr add 10.78.2.2/24 dev fs$$ && ip link set fs$$ up" || exit 1
ip netns exec $NS tc qdisc add dev vs$$ root tbf rate "$RATE" burst 64kb latency 400ms || exit 1
init() { # REPO BIN PROFILES SWARM_ADDR
	IPFS_PATH=$1 $2 init --profile="$3" --empty-repo >/dev/null || exit 1
	IPFS_PATH=$1 $2 config --json Addresses.Swarm "[\"$4\"]" || exit 1
}
PP=${PROVIDER_PROFILES:-test,highload-log}
init "$D/a" "$PB" "$PP" /ip4/10.78.1.1/tcp/4021
init "$D/s" "$PB" "$PP" /ip4/10.78.2.1/tcp/4022
init "$D/f" "$FB" "$FP" /ip4/10.78.1.2/tcp/4023
IPFS_PATH=$D/a ip netns exec $NA "$PB" daemon >"$D/a.log" 2>&1 & pids="$pids $!"
IPFS_PATH=$D/s ip netns exec $NS "$PB" daemon >"$D/s.log" 2>&1 & pids="$pids $!"
IPFS_PATH=$D/f ip netns exec $NF "$FB" daemon >"$D/f.log" 2>&1 & pids="$pids $!"
. "$(dirname "$0")/netns-up.sh"
up $NA "$PB" "$D/a" && up $NS "$PB" "$D/s" && up $NF "$FB" "$D/f" || exit 1
A() { IPFS_PATH=$D/a ip netns exec $NA "$PB" "$@"; }
S() { IPFS_PATH=$D/s ip netns exec $NS "$PB" "$@"; }
F() { IPFS_PATH=$D/f ip netns exec $NF "$FB" "$@"; }
IA=$(A id -f '<id>'); IS=$(S id -f '<id>')
sent() { "$@" bitswap stat --enc=json | python3 -c 'import json,sys; print(json.load(sys.stdin)["DataSent"])'; }
PORT=$(sed 's#.*/tcp/##' "$D/f/api")
for _ in $(seq "$N"); do
	head -c "${SIZE}M" /dev/urandom > "$D/file"
	c=$(A add -Q --chunker=size-262144 --cid-version=1 --raw-leaves "$D/file") || exit 1
	c2=$(S add -Q --chunker=size-262144 --cid-version=1 --raw-leaves "$D/file") || exit 1
	[ "$c" = "$c2" ] || { echo "the providers added $c and $c2" >&2; exit 1; }
	if [ "$MODE" = slowfirst ]; then
		F swarm disconnect "/p2p/$IA" >/dev/null 2>&1; F swarm disconnect "/p2p/$IS" >/dev/null 2>&1
		F swarm connect "/ip4/10.78.2.1/tcp/4022/p2p/$IS" >/dev/null || exit 1
		F block get "$c" >/dev/null || exit 1
		F swarm connect "/ip4/10.78.1.1/tcp/4021/p2p/$IA" >/dev/null || exit 1
	else
		F swarm connect "/ip4/10.78.2.1/tcp/4022/p2p/$IS" >/dev/null || exit 1
		F swarm connect "/ip4/10.78.1.1/tcp/4021/p2p/$IA" >/dev/null || exit 1
	fi
	a0=$(sent A); s0=$(sent S)
	ip netns exec $NF python3 "$(dirname "$0")/timed-cat.py" "$PORT" "$c" || exit 1
	printf "; "
	a1=$(sent A); s1=$(sent S)
	python3 -c "a=$a1-$a0; s=$s1-$s0; print('fast provider %.0f%%, slow %.0f%% of %.1f MiB sent' % (100*a/(a+s), 100*s/(a+s), (a+s)/2**20))"
done
F bitswap stat | grep 'dup blocks'
F stats highload bitswap 2>/dev/null | grep 'Wants sent direct'
