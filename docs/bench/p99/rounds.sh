#!/usr/bin/env bash
# rounds.sh BIN OUT : 3-agent cluster at warn level; R short SET rounds (start/end, p99, max);
# a poller records when each node's badger directory gains a new .sst (flush or compaction output) or .mem (memtable rotation)
set -euo pipefail
BIN=$1; OUT=$2; R=${R:-40}; N=${N:-10000}
mkdir -p $OUT
PPROF=0; . "$(dirname "$0")/cluster.sh"
( declare -A seen; while true; do for f in $(find $W -name '*.sst' -o -name '*.mem'); do [ -n "${seen[$f]:-}" ] || { seen[$f]=1; echo "$(date +%s.%N) $f"; }; done; sleep 0.05; done ) > $OUT/files.txt &
PP=$!
sleep 0.5
for r in $(seq 1 $R); do
  t0=$(date +%s.%N)
  out=$(redis-benchmark -h 127.0.0.1 -p $((base+30)) -c 50 -n $N -d 100 -r 100000 -t set --csv | tail -1)
  t1=$(date +%s.%N)
  echo "$r $t0 $t1 $out"
done > $OUT/rounds.txt
sed -i "s#$W/##" $OUT/files.txt
