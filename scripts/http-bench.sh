#!/usr/bin/env bash
# Measures the quorumkv HTTP API of a local 3-node cluster (N=3 R=2 W=2,
# 100-byte values, 32 concurrent clients) against Redis on the same machine
# (redis-benchmark SET and GET, 32 clients, 100-byte values), ROUNDS times
# each, interleaved, and prints every run and the medians as markdown.
#
#   scripts/http-bench.sh                 # ROUNDS=5 DURATION=10s by default
#   ROUNDS=3 DURATION=5s scripts/http-bench.sh
#
# Installs redis-server and redis-tools with apt-get when missing (needs
# root or sudo). Everything listens on 127.0.0.1 and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
CLIENTS=32
SIZE=100
KEYS=9984 # a multiple of CLIENTS

. scripts/benchlib.sh
need_redis

WORK=$(mktemp -d "${TMPDIR:-/tmp}/quorumkv-bench-XXXXXX")
DEV_PID=""
REDIS_PID=""
cleanup() {
	[ -n "$DEV_PID" ] && kill -INT "$DEV_PID" 2>/dev/null && wait "$DEV_PID" 2>/dev/null || true
	[ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

go build -o "$WORK/quorumkv" ./cmd/quorumkv
go build -o "$WORK/httpload" ./scripts/httpload

"$WORK/quorumkv" dev --nodes 3 --dir "$WORK/cluster" >"$WORK/dev.out" 2>"$WORK/dev.err" &
DEV_PID=$!
for _ in $(seq 1 300); do
	grep -q "Ctrl-C stops every node." "$WORK/dev.out" 2>/dev/null && break
	kill -0 "$DEV_PID" 2>/dev/null || { cat "$WORK/dev.err" >&2; exit 1; }
	sleep 0.1
done
ADDRS=$(sed -n 's/^ *export QUORUMKV_ADDR=//p' "$WORK/dev.out")
[ -n "$ADDRS" ] || { echo "dev did not come up" >&2; cat "$WORK/dev.err" >&2; exit 1; }

RPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 16379)
redis-server --bind 127.0.0.1 --port "$RPORT" --save '' --appendonly no --daemonize no >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
for _ in $(seq 1 100); do redis-cli -h 127.0.0.1 -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

# redis-benchmark runs a request count, not a time: size it to about DURATION
# at ~40k ops/s, with a floor.
SECS=${DURATION%s}
RCOUNT=$(( SECS * 40000 ))
[ "$RCOUNT" -ge 100000 ] || RCOUNT=100000

: >"$WORK/results"
for round in $(seq 1 "$ROUNDS"); do
	for op in put get; do
		line=$("$WORK/httpload" -addr "$ADDRS" -op "$op" -clients "$CLIENTS" -duration "$DURATION" \
			-value-size "$SIZE" -keys "$KEYS" -n 3 -r 2 -w 2)
		echo "quorumkv $line" | tee -a "$WORK/results"
	done
	# CSV: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
	redis-benchmark -h 127.0.0.1 -p "$RPORT" -c "$CLIENTS" -n "$RCOUNT" -d "$SIZE" -r "$KEYS" -t set,get --csv |
		tr -d '"' | awk -F, '$1=="SET"||$1=="GET"{op=($1=="SET")?"put":"get"; printf "redis %s %d %.0f %.0f %.0f - - -\n", op, '"$CLIENTS"', $2, $5*1000, $7*1000}' |
		tee -a "$WORK/results"
done

echo
echo "| op | quorumkv ops/s | p50 µs | p99 µs | redis ops/s | p50 µs | p99 µs | ops/s ratio | p50 ratio | p99 ratio |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for op in put get; do
	q_ops=$(col quorumkv "$op" 4); q50=$(col quorumkv "$op" 5); q99=$(col quorumkv "$op" 6)
	r_ops=$(col redis "$op" 4); r50=$(col redis "$op" 5); r99=$(col redis "$op" 6)
	awk -v op="$op" -v qo="$q_ops" -v q5="$q50" -v q9="$q99" -v ro="$r_ops" -v r5="$r50" -v r9="$r99" 'BEGIN {
		printf "| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.3f | %.1fx | %.1fx |\n", op, qo, q5, q9, ro, r5, r9, qo/ro, q5/r5, q9/r9 }'
done
echo
echo "Per round, quorumkv ops/s divided by Redis ops/s of the same round (load on a shared"
echo "machine drifts between rounds; a same-round ratio is steadier than a ratio of medians):"
for op in put get; do
	ratios=$(awk -v o="$op" '$2==o && $1=="quorumkv" {q[++nq]=$4} $2==o && $1=="redis" {r[++nr]=$4}
		END {for (i=1; i<=nq && i<=nr; i++) printf "%.3f\n", q[i]/r[i]}' "$WORK/results")
	echo "  $op: $(echo $ratios) (median $(echo "$ratios" | median))"
done
echo
echo "errors (quorumkv runs): $(awk '$1=="quorumkv" {s+=$9} END {print s+0}' "$WORK/results")"
