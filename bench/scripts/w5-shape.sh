#!/bin/bash
# w5-shape.sh: the W5 overload shape with per-fetch CPU and page faults, the
# measurement behind docs/health.md "Huge pages for the Go heap" and
# docs/bitswap.md's W5 analyses.
#
# A provider and a peered fetcher (each in the other's Peering.Peers) on
# loopback; NIDLE idle fetches (pin add of SIZE MiB, 256 KiB chunks), then
# NFLOOD fetches while loadgen floods the provider (32 peers x 1,000
# missing wants x 10/s by default). Per fetch: wall time, the provider's
# page faults (pflt) and the CPU of provider, fetcher and loadgen. PROF=1
# adds a provider CPU profile over the first flooded fetches and a
# goroutine dump. It kills its PIDs on exit.
#
# usage: w5-shape.sh BIN OUTDIR [PROFILES=highload-log] [NIDLE=3] [NFLOOD=3] [PROF=1]
# env:   SIZE (MiB, 64), LGARGS, LG_BIN (default: built from bench/loadgen),
#        EDITS="Key=JSON ..." applied to the provider's config, e.g.
#        EDITS='Plugins.Plugins.highload.Config.Runtime.HugePages=false'
set -u
BIN=$1; OUT=$2; PROFS=${3-highload-log}; NIDLE=${4:-3}; NFLOOD=${5:-3}; PROF=${6:-1}
SIZE=${SIZE:-64}; PSEC=${PSEC:-5}; LGARGS=${LGARGS:-"-peers 32 -wants 1000 -rate 10"}
OUT=$(realpath -m "$OUT"); mkdir -p $OUT
LG_BIN=${LG_BIN:-$OUT/loadgen}
[ -x "$LG_BIN" ] || (cd "$(dirname "$0")/../.." && go build -o "$LG_BIN" ./bench/loadgen/cmd/loadgen) || exit 1
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -9 $p 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT; trap 'exit 1' INT TERM
fp() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
P=$OUT/p; F=$OUT/f; rm -rf $P $F
prof="test"; [ -n "$PROFS" ] && prof="test,$PROFS"
IPFS_PATH=$P $BIN init --profile=$prof --empty-repo >/dev/null || exit 1
IPFS_PATH=$F $BIN init --profile=$prof --empty-repo >/dev/null || exit 1
for e in ${EDITS:-}; do k=${e%%=*}; v=${e#*=}; IPFS_PATH=$P $BIN config --json "$k" "$v" >/dev/null || exit 1; done
idof() { python3 -c "import json;print(json.load(open('$1/config'))['Identity']['PeerID'])"; }
IDP=$(idof $P); IDF=$(idof $F); PP=$(fp); FPT=$(fp)
IPFS_PATH=$P $BIN config --json Addresses.Swarm "[\"/ip4/127.0.0.1/tcp/$PP\"]"
IPFS_PATH=$F $BIN config --json Addresses.Swarm "[\"/ip4/127.0.0.1/tcp/$FPT\"]"
IPFS_PATH=$P $BIN config --json Peering.Peers "[{\"ID\":\"$IDF\",\"Addrs\":[\"/ip4/127.0.0.1/tcp/$FPT\"]}]"
IPFS_PATH=$F $BIN config --json Peering.Peers "[{\"ID\":\"$IDP\",\"Addrs\":[\"/ip4/127.0.0.1/tcp/$PP\"]}]"
for d in $P $F; do
  IPFS_PATH=$d IPFS_FD_MAX=65536 GOLOG_LOG_LEVEL=error $BIN daemon >$d.log 2>&1 &
  PIDS+=($!)
done
DPID_P=${PIDS[0]}; DPID_F=${PIDS[1]}
for d in $P $F; do
  for i in $(seq 300); do [ -f $d/api ] && IPFS_PATH=$d $BIN id >/dev/null 2>&1 && break; sleep 0.2; done
done
api() { sed 's#/ip4/\([^/]*\)/tcp/\([0-9]*\)#\1:\2#' $1/api; }
AP=$(api $P); AF=$(api $F)
ip() { IPFS_PATH=$P $BIN "$@"; }
if_() { IPFS_PATH=$F $BIN "$@"; }
if_ swarm connect /ip4/127.0.0.1/tcp/$PP/p2p/$IDP >/dev/null
N=$((NIDLE+NFLOOD))
ROOTS=()
for i in $(seq $N); do
  r=$(head -c $((SIZE<<20)) /dev/urandom | ip add -Q --chunker=size-262144 --pin=true)
  ip dag stat --progress=false --offline $r >/dev/null
  ROOTS+=($r)
done
cpu() { awk '{print $14+$15}' /proc/$1/stat 2>/dev/null || echo 0; }  # ticks
LG=""
timed_pin() {
  local t0 t1 c0 c1 f0 f1 l0 l1
  m0=$(awk '{print $10}' /proc/$DPID_P/stat); c0=$(cpu $DPID_P); f0=$(cpu $DPID_F); l0=0; [ -n "$LG" ] && l0=$(cpu $LG); t0=$(date +%s.%N)
  if_ pin add --progress=false $1 >/dev/null || echo "PIN FAILED $1"
  t1=$(date +%s.%N); m1=$(awk '{print $10}' /proc/$DPID_P/stat); echo -n "pflt $((m1-m0)) "; c1=$(cpu $DPID_P); f1=$(cpu $DPID_F); l1=0; [ -n "$LG" ] && l1=$(cpu $LG)
  python3 -c "w=$t1-$t0; print('%.3f s  cpu: provider %.2f fetcher %.2f loadgen %.2f (cores: %.2f %.2f %.2f)' % (w, ($c1-$c0)/100, ($f1-$f0)/100, ($l1-$l0)/100, ($c1-$c0)/100/w, ($f1-$f0)/100/w, ($l1-$l0)/100/w))"
}
echo "load: $(uptime)"
for i in $(seq 0 $((NIDLE-1))); do echo "idle $i: $(timed_pin ${ROOTS[$i]})"; done
$LG_BIN flood -target /ip4/127.0.0.1/tcp/$PP/p2p/$IDP $LGARGS -duration 600s >$OUT/lg.out 2>$OUT/lg.err &
LG=$!; PIDS+=($LG)
for i in $(seq 600); do grep -q '"started"' $OUT/lg.out && break; sleep 0.1; done
FC0=$(cpu $DPID_P); FL0=$(cpu $LG); FT0=$(date +%s.%N)
sleep 2
echo "2s of flood, no fetch: provider $(( $(cpu $DPID_P)-FC0 )) ticks, loadgen $(( $(cpu $LG)-FL0 )) ticks"
curl -s "http://$AP/debug/metrics/prometheus" >$OUT/metrics0.txt
CP=""; [ "$NFLOOD" = 0 ] && sleep ${FLOODSEC:-0}
for i in $(seq $NIDLE $((N-1))); do
  if [ $i = $NIDLE ] && [ $PROF = 1 ]; then
    (curl -s "http://$AP/debug/pprof/profile?seconds=3" -o $OUT/cpuA.pb.gz; curl -s "http://$AP/debug/pprof/profile?seconds=3" -o $OUT/cpuB.pb.gz; curl -s "http://$AP/debug/pprof/profile?seconds=4" -o $OUT/cpuC.pb.gz) &
    CP=$!
    (sleep 0.5; curl -s "http://$AP/debug/pprof/goroutine?debug=1" -o $OUT/gr1.txt; ip stats highload bitswap >$OUT/hlbs1.txt 2>&1) &
  fi
  echo "flood $i: $(timed_pin ${ROOTS[$i]})"
done
ip stats highload bitswap >$OUT/hlbs2.txt 2>&1
ip stats highload health 2>&1 | grep -A1 "huge pages"
FC1=$(cpu $DPID_P); FL1=$(cpu $LG); FT1=$(date +%s.%N)
kill -INT $LG; for i in $(seq 100); do kill -0 $LG 2>/dev/null || break; sleep 0.1; done
grep '"event":"result"' $OUT/lg.out | python3 -c "
import json,sys;r=json.loads(sys.stdin.read())['result']
cpu=($FC1-$FC0)/100; lcpu=($FL1-$FL0)/100; dur=$FT1-$FT0
print('flood: %d msgs sent in %.1f s (%.0f msg/s), behind %d, send errors %d, DONT_HAVEs back %d, disconnected %d; over the flood: provider CPU %.1f s (%.0f%% of a core), loadgen %.1f s (%.0f%%); %.2f ms provider CPU per flood message' % (r['sent'], r['flood_s'], r['msg_per_s'], r['behind'], r['send_errors'], r['recv_dont_haves'], r.get('disconnected',0), cpu, 100*cpu/dur, lcpu, 100*lcpu/dur, 1000*cpu/max(r['sent'],1)))" || tail -c 600 $OUT/lg.out
grep -E "^Trips|^Peer breakers|[Hh]eld" $OUT/hlbs2.txt
echo "provider VmHWM: $(grep VmHWM /proc/$DPID_P/status)"
echo "load: $(uptime)"
[ -n "$CP" ] && wait $CP 2>/dev/null
