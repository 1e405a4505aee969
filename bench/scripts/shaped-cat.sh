#!/bin/bash
# shaped-cat.sh: time to first byte and throughput of `ipfs cat` over a
# rate-limited link, the measurement behind docs/bitswap.md "Seventh pass".
#
# Needs root: it creates two network namespaces joined by a veth pair, with
# a tbf qdisc at RATE on the provider's side, runs one daemon in each (the
# provider and the fetcher), adds N random files of SIZE MiB (256 KiB
# chunks, CIDv1, raw leaves) on the provider, connects the fetcher to it,
# and cats each file through the fetcher's RPC API, printing MiB/s and the
# time to the first byte of the body. It stops its daemons by PID and
# deletes its namespaces on exit. Nothing but its own namespaces carries the
# traffic.
#
# usage: shaped-cat.sh PROVIDER_BIN FETCHER_BIN PROVIDER_PROFILES FETCHER_PROFILES N SIZE_MiB RATE DIR
# e.g.:  shaped-cat.sh build/bin/ipfs build/bin/ipfs test,highload-log test,highload-log 7 16 100mbit /tmp/sc
#        shaped-cat.sh build/bin/ipfs-stock build/bin/ipfs-stock test test 7 16 100mbit /tmp/sc
set -u
[ $# -eq 8 ] || { sed -n '2,16p' "$0"; exit 2; }
PB=$1; FB=$2; PP=$3; FP=$4; N=$5; SIZE=$6; RATE=$7; D=$8
NP=hlsc-p-$$; NF=hlsc-f-$$; VP=hlscp$$; VF=hlscf$$
export GOLOG_LOG_LEVEL=error
p1=""; p2=""
cleanup() {
	for p in $p1 $p2; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	ip netns del $NP 2>/dev/null; ip netns del $NF 2>/dev/null
}
trap cleanup EXIT
rm -rf "$D"; mkdir -p "$D"
ip netns add $NP && ip netns add $NF || exit 1
ip link add $VP type veth peer name $VF || exit 1
ip link set $VP netns $NP; ip link set $VF netns $NF
ip netns exec $NP sh -c "ip addr add 10.77.0.1/24 dev $VP && ip link set $VP up && ip link set lo up" || exit 1
ip netns exec $NF sh -c "ip addr add 10.77.0.2/24 dev $VF && ip link set $VF up && ip link set lo up" || exit 1
ip netns exec $NP tc qdisc add dev $VP root tbf rate "$RATE" burst 64kb latency 400ms || exit 1
IPFS_PATH=$D/p "$PB" init --profile="$PP" --empty-repo >/dev/null || exit 1
IPFS_PATH=$D/f "$FB" init --profile="$FP" --empty-repo >/dev/null || exit 1
IPFS_PATH=$D/p "$PB" config --json Addresses.Swarm '["/ip4/10.77.0.1/tcp/4011"]' || exit 1
IPFS_PATH=$D/f "$FB" config --json Addresses.Swarm '["/ip4/10.77.0.2/tcp/4012"]' || exit 1
IPFS_PATH=$D/p ip netns exec $NP "$PB" daemon >"$D/p.log" 2>&1 & p1=$!
IPFS_PATH=$D/f ip netns exec $NF "$FB" daemon >"$D/f.log" 2>&1 & p2=$!
. "$(dirname "$0")/netns-up.sh"
up $NP "$PB" "$D/p" && up $NF "$FB" "$D/f" || exit 1
CIDS=()
for _ in $(seq "$N"); do
	CIDS+=("$(head -c "${SIZE}M" /dev/urandom | IPFS_PATH=$D/p ip netns exec $NP "$PB" add -Q --chunker=size-262144 --cid-version=1 --raw-leaves)") || exit 1
done
ID=$(IPFS_PATH=$D/p ip netns exec $NP "$PB" id -f '<id>')
IPFS_PATH=$D/f ip netns exec $NF "$FB" swarm connect "/ip4/10.77.0.1/tcp/4011/p2p/$ID" >/dev/null || exit 1
PORT=$(sed 's#.*/tcp/##' "$D/f/api")
for c in "${CIDS[@]}"; do
	ip netns exec $NF python3 "$(dirname "$0")/timed-cat.py" "$PORT" "$c" || exit 1
	echo
done
