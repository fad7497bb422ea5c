#!/usr/bin/env bash
# prof1.sh BIN OUTDIR: 3 agents (docs/bench/p99/cluster.sh, pprof), one client SET; a PSEC-second (8) CPU profile of n1 and n2 mid-run.
set -euo pipefail
BIN=$1; OUT=$2; N=${N:-40000}
mkdir -p $OUT
PPROF=1; . "$(dirname "$0")/../p99/cluster.sh"
redis-benchmark -h 127.0.0.1 -p $((base+30)) -c 1 -n $N -d 100 -r 100000 -t set > $OUT/rb.txt &
RB=$!
sleep 2
curl -sf -o $OUT/n1.pb "http://127.0.0.1:$((base+90))/debug/pprof/profile?seconds=${PSEC:-8}" & C1=$!
curl -sf -o $OUT/n2.pb "http://127.0.0.1:$((base+91))/debug/pprof/profile?seconds=${PSEC:-8}" & C2=$!
wait $RB $C1 $C2 # not a bare wait: that would wait for the agents too, and hang
grep -E '50.000%' $OUT/rb.txt | head -1
