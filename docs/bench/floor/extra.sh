#!/usr/bin/env bash
# Two side measurements for docs/bench/floor.md, run under the bench lock by
# the caller (flock -o /tmp/qkv-bench.lock docs/bench/floor/extra.sh):
# 1. one badger commit at a time (commit.go), 3 runs;
# 2. the minimal store on a map with GET asking both other processes vs one
#    (-get both|one; R=2 either way), ROUNDS rounds of 50-client GETs after a
#    100,000-key fill, CPU µs per GET of all three processes.
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROUNDS=${ROUNDS:-4}
B=${BINS:-/tmp/floor-bins}
mkdir -p "$B"
go build -o "$B/commit" docs/bench/floor/commit.go
go build -o "$B/mini" docs/bench/floor/mini.go
export GOMAXPROCS=1
. scripts/benchlib.sh
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
for k in 1 2 3; do "$B/commit" -n 20000; done
waitport() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; exit 1; }
declare -A PORT CP
for mode in both one; do
	r2=$(freeport); r3=$(freeport); r1=$(freeport); rp=$(freeport)
	"$B/mini" -listen 127.0.0.1:$r2 & PIDS+=($!); a=$!
	"$B/mini" -listen 127.0.0.1:$r3 & PIDS+=($!); b=$!
	waitport $r2; waitport $r3
	"$B/mini" -listen 127.0.0.1:$r1 -resp 127.0.0.1:$rp -peers 127.0.0.1:$r2,127.0.0.1:$r3 -get $mode & PIDS+=($!)
	waitport $rp
	PORT[$mode]=$rp; CP[$mode]="$a $b $!"
	redis-benchmark -p $rp -c 50 -n 200000 -r 100000 -d 100 -t set -q >/dev/null 2>&1
done
ticks() { local s=0 p; for p in "$@"; do s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$s"; }
TCK=$(getconf CLK_TCK)
echo "# mode round ops/s p50_ms p99_ms cpu_us_per_get"
for round in $(seq 1 "$ROUNDS"); do
	for mode in both one; do
		t0=$(ticks ${CP[$mode]})
		out=$(redis-benchmark -p ${PORT[$mode]} -c 50 -n 100000 -r 100000 -d 100 -t get --csv 2>/dev/null | grep '^"GET"' | tr -d '"' | awk -F, '{print $2, $5, $7}')
		t1=$(ticks ${CP[$mode]})
		echo "get-$mode $round $out $(awk -v d=$((t1 - t0)) -v t=$TCK 'BEGIN {printf "%.1f", d / t * 1e6 / 100000}')"
	done
done
