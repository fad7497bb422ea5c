#!/usr/bin/env bash
# trace.sh BIN OUTDIR : 3-agent cluster (cluster.sh with QUORUMKV_PPROF; AGENT_ENV=GODEBUG=gctrace=1 for gctrace) under redis-benchmark -c 50 SET;
# per-agent CPU and run-queue wait (/proc/PID/task/*/schedstat) per op, TSEC-second traces and CPU profiles of n1 n2 n3
# taken together (the traces then carry CPU samples), redis-benchmark latency distribution (OUTDIR/rb.txt)
set -euo pipefail
BIN=$1; OUT=$2; N=${N:-200000}; OP=${OP:-set}
mkdir -p $OUT
PPROF=1; . "$(dirname "$0")/cluster.sh"
ss() { local p=$1; cat /proc/$p/task/*/schedstat | awk '{r+=$1; w+=$2; n+=$3} END{printf "%.0f %.0f %.0f\n", r, w, n}'; }
declare -A b
for i in 0 1 2; do b[$i]=$(ss ${pids[$i]}); done
date +%s.%N > $OUT/t0
redis-benchmark -h 127.0.0.1 -p $((base+30)) -c 50 -n $N -d 100 -r 100000 -t $OP > $OUT/rb.txt &
RB=$!
sleep 2
if [ "${TRACE:-1}" = 1 ]; then
for i in 0 1 2; do curl -sf -o $OUT/n$((i+1)).trace "http://127.0.0.1:$((base+90+i))/debug/pprof/trace?seconds=${TSEC:-5}" & curl -sf -o $OUT/n$((i+1)).pb "http://127.0.0.1:$((base+90+i))/debug/pprof/profile?seconds=${TSEC:-5}" & done
fi
wait $RB
date +%s.%N > $OUT/t1
for i in 0 1 2; do
  read -r r0 w0 n0 <<<"${b[$i]}"; read -r r1 w1 n1 <<<"$(ss ${pids[$i]})"
  awk -v N=$N -v i=$i -v r=$((r1-r0)) -v w=$((w1-w0)) -v n=$((n1-n0)) 'BEGIN{printf "n%d run_us/op %.1f rqwait_us/op %.1f slices/op %.2f avg_wait_us/slice %.1f\n", i+1, r/1e3/N, w/1e3/N, n/N, w/1e3/n}'
done | tee $OUT/sched.txt
grep -E 'requests per second|^ +[0-9.]+% <=' $OUT/rb.txt | tail -30 > $OUT/rb.sum || true
