# cluster.sh, sourced by trace.sh and rounds.sh: starts three agents of $BIN as bench/peers.sh
# does (GOMAXPROCS=1, --profile local, --ae-interval 1m), logs in $OUT/n1..n3.log, data in a
# temporary directory ($W), RESP of n1 on $((base+30)); with PPROF=1 each agent serves pprof on
# $((base+90+i)). Waits until all are ready, then writes 100,000 SETs (-c 50) to warm up.
W=$(mktemp -d /tmp/p99XXXX)
base=$(( 20000 + RANDOM % 20000 ))
pids=()
for i in 0 1 2; do
  join=(); [ $i -gt 0 ] && join=(--join 127.0.0.1:$((base+10)))
  penv=(); [ "${PPROF:-0}" = 1 ] && penv=(QUORUMKV_PPROF=127.0.0.1:$((base+90+i)))
  env QUORUMKV_SECRET=peers-bench GOMAXPROCS=1 ${AGENT_ENV:-} "${penv[@]}" "$BIN" agent --node-id n$((i+1)) --data-dir $W/n$i --http 127.0.0.1:$((base+i)) --rpc 127.0.0.1:$((base+20+i)) --gossip 127.0.0.1:$((base+10+i)) --resp 127.0.0.1:$((base+30+i)) --profile local --ae-interval 1m --log-level ${LOGLEVEL:-warn} "${join[@]}" 2>$OUT/n$((i+1)).log &
  pids+=($!)
done
trap 'kill ${pids[@]} ${PP:-} 2>/dev/null; wait; rm -rf $W' EXIT
for _ in $(seq 1 300); do ok=1; for i in 0 1 2; do [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$((base+i))/readyz)" = 200 ] || ok=0; done; [ $ok = 1 ] && break; sleep 0.1; done; [ $ok = 1 ] || { echo not ready; exit 1; }
redis-benchmark -h 127.0.0.1 -p $((base+30)) -c 50 -n 100000 -d 100 -r 100000 -t set -q >/dev/null
