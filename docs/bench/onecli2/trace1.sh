#!/usr/bin/env bash
# trace1.sh BIN OUTDIR: 3 processes (GOMAXPROCS=1) under one redis-benchmark client doing SET
# (N requests, 100-byte values, 100,000 keys); 2 s into it, a TSEC-second execution trace of
# process 1 (the coordinator) and process 2 (a replica): OUTDIR/n1.trace, OUTDIR/n2.trace.
# BIN is a quorumkv binary (agents as docs/bench/p99/cluster.sh starts them, with pprof), or
# "mini" for the floor's mini badger (docs/bench/floor; MINI=path of a binary built with
# `go build docs/bench/floor/mini.go`). Read the traces with timeline.go (docs/bench/onecli2.md).
set -euo pipefail
BIN=$1; OUT=$2; N=${N:-40000}
mkdir -p $OUT
if [ "$BIN" = mini ]; then
	W=$(mktemp -d /tmp/minitrXXXX)
	base=$(( 20000 + RANDOM % 20000 ))
	pids=()
	for i in 2 3; do mkdir -p $W/b$i; GOMAXPROCS=1 ${MINI:-/tmp/onecli2-bins/mini} -listen 127.0.0.1:$((base+i)) -store badger -dir $W/b$i -pprof 127.0.0.1:$((base+89+i)) & pids+=($!); done
	trap 'kill ${pids[@]} 2>/dev/null; wait; rm -rf $W' EXIT
	sleep 0.5
	mkdir -p $W/b1
	GOMAXPROCS=1 ${MINI:-/tmp/onecli2-bins/mini} -listen 127.0.0.1:$((base+1)) -resp 127.0.0.1:$((base+30)) -peers 127.0.0.1:$((base+2)),127.0.0.1:$((base+3)) -store badger -dir $W/b1 -pprof 127.0.0.1:$((base+90)) & pids+=($!)
	for _ in $(seq 1 100); do redis-cli -p $((base+30)) ping >/dev/null 2>&1 && break; sleep 0.1; done
	redis-benchmark -h 127.0.0.1 -p $((base+30)) -c 50 -n 100000 -d 100 -r 100000 -t set -q >/dev/null 2>&1
else
	PPROF=1; . "$(dirname "$0")/../p99/cluster.sh" # warms up with 100,000 SETs
fi
redis-benchmark -h 127.0.0.1 -p $((base+30)) -c 1 -n $N -d 100 -r 100000 -t set > $OUT/rb.txt 2>/dev/null &
RB=$!
sleep 2
curl -sf -o $OUT/n1.trace "http://127.0.0.1:$((base+90))/debug/pprof/trace?seconds=${TSEC:-2}" &
curl -sf -o $OUT/n2.trace "http://127.0.0.1:$((base+91))/debug/pprof/trace?seconds=${TSEC:-2}" &
wait $RB
grep -E '50.000%' $OUT/rb.txt | head -1
