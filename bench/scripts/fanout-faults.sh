#!/bin/bash
# fanout-faults.sh: the W4 fan-out shape with per-daemon page faults, CPU
# and peak RSS, the measurement behind docs/health.md "Huge pages for the
# Go heap".
#
# One provider and NF fresh fetchers on loopback; the provider adds one
# random file of SIZE MiB per fetcher (256 KiB chunks, CIDv1, raw leaves),
# then every fetcher pins its own at once. Prints the wall time, the
# aggregate MiB/s, the provider's GC cycles, and per daemon (0 is the
# provider) page faults, CPU ticks and VmHWM in MB; then each fetcher's
# huge page state (passes, heap mapped, marked and in huge pages, MiB).
# OFF=1 sets Config.Runtime.HugePages=false on every daemon. It stops its
# daemons by PID on exit.
#
# usage: fanout-faults.sh BIN PROFILES SIZE_MiB NF OUTDIR
# e.g.:  fanout-faults.sh build/bin/ipfs test,highload-log 32 8 /tmp/ff
set -u
[ $# -eq 5 ] || { sed -n '2,16p' "$0"; exit 2; }
B=$1; PROFS=$2; SIZE=$3; NF=$4; D=$5
rm -rf $D; mkdir -p $D
export GOLOG_LOG_LEVEL=error
pids=()
trap 'kill ${pids[@]} 2>/dev/null' EXIT
for n in p $(seq $NF); do IPFS_PATH=$D/$n $B init --profile=$PROFS --empty-repo >/dev/null || exit 1; [ -n "${OFF:-}" ] && IPFS_PATH=$D/$n $B config --json Plugins.Plugins.highload.Config.Runtime.HugePages false; IPFS_PATH=$D/$n $B daemon >$D/$n.log 2>&1 & pids+=($!); done
for n in p $(seq $NF); do for i in $(seq 300); do [ -f $D/$n/api ] && IPFS_PATH=$D/$n $B id >/dev/null 2>&1 && break; sleep 0.1; done; done
PADDR=$(IPFS_PATH=$D/p $B id -f '<addrs>' | grep 127.0.0.1 | head -1)/p2p/$(IPFS_PATH=$D/p $B id -f '<id>')
CIDS=()
for n in $(seq $NF); do CIDS+=($(head -c ${SIZE}M /dev/urandom | IPFS_PATH=$D/p $B add -Q --chunker=size-262144 --cid-version=1 --raw-leaves)); IPFS_PATH=$D/$n $B swarm connect $PADDR >/dev/null || exit 1; done
st() { awk '{print $10, $14+$15}' /proc/$1/stat; }
declare -A F0 C0
for k in $(seq 0 $NF); do read F0[$k] C0[$k] < <(st ${pids[$k]}); done
gcs() { curl -s "http://127.0.0.1:$(sed 's#.*/tcp/##' $D/p/api)/debug/metrics/prometheus" | awk '/^go_gc_duration_seconds_count/{print $2}'; }
g0=$(gcs)
t0=$(date +%s.%N)
pins=(); for n in $(seq $NF); do IPFS_PATH=$D/$n $B pin add ${CIDS[$((n-1))]} >/dev/null & pins+=($!); done; wait ${pins[@]}
t1=$(date +%s.%N)
out="provider gcs $(( $(gcs) - g0 )) wall $(echo "$t1-$t0" | bc) s; MiB/s $(echo "$SIZE*$NF/($t1-$t0)" | bc)"
for k in $(seq 0 $NF); do read f c < <(st ${pids[$k]}); out="$out | $k: flt $((f-F0[$k])) cpu $((c-C0[$k])) hwm $(awk '/VmHWM/{print int($2/1024)}' /proc/${pids[$k]}/status)"; done
echo "$out"
for n in $(seq $NF); do IPFS_PATH=$D/$n $B stats highload health --enc=json 2>/dev/null | python3 -c 'import json,sys; h=json.load(sys.stdin).get("HugePages") or {}; print("fetcher", sys.argv[1], h.get("Passes"), h.get("HeapMappedBytes",0)>>20, h.get("MarkedBytes",0)>>20, h.get("AnonHugePagesBytes",0)>>20, h.get("Detail"))' $n; done
