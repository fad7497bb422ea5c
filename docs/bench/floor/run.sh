#!/usr/bin/env bash
# The floor of issue 16's aims on this machine (docs/bench/floor.md): the
# smallest programs that do the unavoidable work, measured beside Redis and
# quorumkv in the same run.
#
#   docs/bench/floor/run.sh                  # ROUNDS=5 REQUESTS=100000
#   ROUNDS=3 REQUESTS=50000 docs/bench/floor/run.sh
#   QUORUMKV_BIN=/path/quorumkv docs/bench/floor/run.sh   # else built from /work/main (QUORUMKV_SRC)
#
# 1. One outstanding message: Go ping-pong RTT over 127.0.0.1 (100 B, one hop
#    A<->B, and two hops in series A->B->C->B->A), then redis-benchmark -c 1
#    -n 20000 -t set,get -d 100 against Redis, the minimal store (map and
#    badger) and quorumkv's node 1.
# 2. ROUNDS rounds, interleaved (the order rotates each round): redis-benchmark
#    -c 50 -n REQUESTS -r 100000 -d 100 -t set, then -t get, against the same
#    four. ops/s, p50, p99, CPU µs per op (utime+stime of every server process
#    of that store from /proc/PID/stat, before and after, / requests); medians
#    and ranges.
# Every server runs with GOMAXPROCS=1 and listens on 127.0.0.1. Each phase (and
# each round) runs under flock $LOCK; servers are started outside it and do
# not inherit the lock. Everything started is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../../.."   # the repository root (badger comes from its go.mod)

ROUNDS=${ROUNDS:-5}
REQUESTS=${REQUESTS:-100000}
ONE_N=${ONE_N:-20000}
LOCK=${LOCK:-/tmp/qkv-bench.lock}
BINS=${BINS:-/tmp/floor-bins}
QUORUMKV_SRC=${QUORUMKV_SRC:-/work/main}
. scripts/benchlib.sh
need_redis

WORK=$(mktemp -d "${TMPDIR:-/tmp}/floor-XXXXXX")
PIDS=()
cleanup() {
	exec 9>&- 2>/dev/null || true
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$BINS"
go build -o "$BINS/pingpong" docs/bench/floor/pingpong.go
go build -o "$BINS/mini" docs/bench/floor/mini.go
if [ -n "${QUORUMKV_BIN:-}" ]; then
	cp "$QUORUMKV_BIN" "$BINS/quorumkv"
else
	(cd "$QUORUMKV_SRC" && go build -o "$BINS/quorumkv" ./cmd/quorumkv)
fi
export GOMAXPROCS=1 # every server and the ping-pong programs
QREV=$(git -C "$QUORUMKV_SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)

lock() { exec 9>"$LOCK"; flock 9; }
unlock() { flock -u 9; exec 9>&-; }

# bg CMD...: starts a server with the lock's fd closed, records its pid in LAST.
bg() { "$@" 9>&- 2>>"$WORK/servers.log" & LAST=$!; PIDS+=("$LAST"); }
waitport() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

# --- servers ---
RPORT=$(freeport)
bg redis-server --bind 127.0.0.1 --port "$RPORT" --save '' --appendonly no --daemonize no
REDIS_PIDS=("$LAST")

# mini STORE: three processes; fills <STORE>_PORT and <STORE>_PIDS.
mini() {
	local kind=$1 i pids=() rep=() resp
	for i in 1 2 3; do rep[i]=$(freeport); mkdir -p "$WORK/$kind$i"; done
	resp=$(freeport)
	for i in 2 3; do
		bg "$BINS/mini" -listen "127.0.0.1:${rep[i]}" -store "$kind" -dir "$WORK/$kind$i"; pids+=("$LAST")
	done
	waitport "${rep[2]}"; waitport "${rep[3]}"
	bg "$BINS/mini" -listen "127.0.0.1:${rep[1]}" -resp "127.0.0.1:$resp" -peers "127.0.0.1:${rep[2]},127.0.0.1:${rep[3]}" -store "$kind" -dir "$WORK/${kind}1"; pids+=("$LAST")
	waitport "$resp"
	eval "${kind}_PORT=$resp"
	eval "${kind}_PIDS=(${pids[*]})"
	eval "${kind}_COORD=$LAST"
}
mini mem
mini badger

# quorumkv: three agents as bench/peers.sh starts them (GOMAXPROCS=1 each,
# --profile local --ae-interval 1m, QUORUMKV_SECRET set, N=3 R=2 W=2 defaults).
declare -a http rpc gossip resp QKV_PIDS
for i in 0 1 2; do
	http[i]=127.0.0.1:$(freeport); rpc[i]=127.0.0.1:$(freeport)
	gossip[i]=127.0.0.1:$(freeport); resp[i]=127.0.0.1:$(freeport)
done
for i in 0 1 2; do
	join=()
	[ "$i" -gt 0 ] && join=(--join "${gossip[0]}")
	bg env QUORUMKV_SECRET=floor-bench "$BINS/quorumkv" agent --node-id "n$((i + 1))" --data-dir "$WORK/q-n$((i + 1))" \
		--http "${http[i]}" --rpc "${rpc[i]}" --gossip "${gossip[i]}" --resp "${resp[i]}" \
		--profile local --ae-interval 1m --log-level warn "${join[@]}"
	QKV_PIDS+=("$LAST")
done
alive() { curl -s "http://$1/cluster/members" | grep -o '"state": *"alive"' | wc -l; }
ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$1/readyz")" = 200 ]; }
ok=0
for _ in $(seq 1 600); do
	ok=1
	for i in 0 1 2; do [ "$(alive "${http[i]}")" = 3 ] && ready "${http[i]}" || ok=0; done
	[ "$ok" = 1 ] && break
	sleep 0.1
done
[ "$ok" = 1 ] || { echo "quorumkv cluster did not form" >&2; cat "$WORK/servers.log" >&2; exit 1; }
quorumkv_PORT=${resp[0]##*:}
quorumkv_PIDS=("${QKV_PIDS[@]}")
quorumkv_COORD=${QKV_PIDS[0]}
redis_COORD=${REDIS_PIDS[0]}
redis_PORT=$RPORT
redis_PIDS=("${REDIS_PIDS[@]}")
for _ in $(seq 1 100); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

TCK=$(getconf CLK_TCK)
ticks() { local s=0 p; for p in "$@"; do s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$s"; }
alive_all() { local p; for p in "${redis_PIDS[@]}" "${mem_PIDS[@]}" "${badger_PIDS[@]}" "${quorumkv_PIDS[@]}"; do kill -0 "$p" 2>/dev/null || { echo "server $p died" >&2; cat "$WORK/servers.log" >&2; exit 1; }; done; }

echo "# $(date -u +%FT%TZ) $(go version | cut -d' ' -f3); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# redis $(redis-server --version | cut -d' ' -f3 | cut -d= -f2); quorumkv $QREV; GOMAXPROCS=1 every server"

# --- 1. one outstanding message ---
lock
echo "## ping-pong, 100 B, one outstanding (3 runs each, $ONE_N round trips)"
PE=$(freeport); PR=$(freeport)
bg "$BINS/pingpong" -role echo -listen "127.0.0.1:$PE"; PPE=$LAST
bg "$BINS/pingpong" -role relay -listen "127.0.0.1:$PR" -next "127.0.0.1:$PE"; PPR=$LAST
waitport "$PE"; waitport "$PR"
for k in 1 2 3; do
	echo "one-hop $("$BINS/pingpong" -role client -target "127.0.0.1:$PE" -n "$ONE_N")"
	echo "two-hop $("$BINS/pingpong" -role client -target "127.0.0.1:$PR" -n "$ONE_N")"
done
kill "$PPE" "$PPR"; wait "$PPE" "$PPR" 2>/dev/null || true
echo "## one client: redis-benchmark -c 1 -n $ONE_N -t set,get -d 100 (name op ops/s p50_ms p99_ms cpu_us_per_op)"
for name in redis mem badger quorumkv; do
	port=${name}_PORT; port=${!port}
	eval "pids=(\"\${${name}_PIDS[@]}\")"
	for op in set get; do
		t0=$(ticks "${pids[@]}")
		out=$(redis-benchmark -h 127.0.0.1 -p "$port" -c 1 -n "$ONE_N" -d 100 -t "$op" --csv 2>/dev/null | grep -i "^\"$op\"" | tr -d '"' | awk -F, '{print $2, $5, $7}')
		t1=$(ticks "${pids[@]}")
		read -r rps p50 p99 <<<"$out"
		awk -v n="one-$name" -v o="$op" -v r="$rps" -v a="$p50" -v b="$p99" -v d=$((t1 - t0)) -v t="$TCK" -v q="$ONE_N" \
			'BEGIN { printf "%s %s %.0f %.3f %.3f %.1f\n", n, o, r, a, b, d / t * 1e6 / q }'
	done
done
alive_all
unlock

# --- 2. 50 clients, ROUNDS rounds interleaved ---
echo "## 50 clients: redis-benchmark -c 50 -n $REQUESTS -r 100000 -d 100 -t OP (name op ops/s p50_ms p99_ms cpu_us_per_op round coordinator_cpu_us_per_op)"
: >"$WORK/results"
NAMES=(redis mem badger quorumkv)
for round in $(seq 1 "$ROUNDS"); do
	lock
	for op in set get; do
		for j in 0 1 2 3; do
			name=${NAMES[$(((j + round - 1) % 4))]}
			port=${name}_PORT; port=${!port}
			eval "pids=(\"\${${name}_PIDS[@]}\")"
			coord=${name}_COORD; coord=${!coord}
			c0=$(ticks "$coord")
			t0=$(ticks "${pids[@]}")
			out=$(redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -n "$REQUESTS" -r 100000 -d 100 -t "$op" --csv 2>/dev/null | grep -i "^\"$op\"" | tr -d '"' | awk -F, '{print $2, $5, $7}') || true
			t1=$(ticks "${pids[@]}")
			c1=$(ticks "$coord")
			alive_all
			[ -n "$out" ] || { echo "$name $op: no result" >&2; continue; }
			read -r rps p50 p99 <<<"$out"
			awk -v n="$name" -v o="$op" -v r="$rps" -v a="$p50" -v b="$p99" -v d=$((t1 - t0)) -v t="$TCK" -v q="$REQUESTS" -v k="$round" -v e=$((c1 - c0)) \
				'BEGIN { printf "%s %s %.0f %.3f %.3f %.1f %d %.1f\n", n, o, r, a, b, d / t * 1e6 / q, k, e / t * 1e6 / q }' | tee -a "$WORK/results"
		done
	done
	unlock
done

# range STORE OP COLUMN: "median (min–max)"
stat() {
	awk -v s="$1" -v o="$2" -v c="$3" '$1==s && $2==o {print $c}' "$WORK/results" | sort -g |
		awk -v f="$4" '{a[NR]=$1} END {if (!NR) {print "-"; exit}; m = NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf f " (" f "–" f ")\n", m, a[1], a[NR]}'
}
echo
echo "| store | op | ops/s | p50 ms | p99 ms | CPU µs/op (all processes) | of it process 1 | ops/s / Redis |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for name in redis mem badger quorumkv; do
	for op in set get; do
		r=$(awk -v s="$name" -v o="$op" '$1==s && $2==o {print $3}' "$WORK/results" | median)
		rr=$(awk -v o="$op" '$1=="redis" && $2==o {print $3}' "$WORK/results" | median)
		printf "| %s | %s | %s | %s | %s | %s | %s | %.3f |\n" "$name" "$op" "$(stat $name $op 3 %.0f)" "$(stat $name $op 4 %.3f)" \
			"$(stat $name $op 5 %.3f)" "$(stat $name $op 6 %.1f)" "$(stat $name $op 8 %.1f)" "$(awk -v a="$r" -v b="$rr" 'BEGIN {print (b > 0 ? a / b : 0)}')"
	done
done
echo
echo "medians (min–max) of $ROUNDS rounds; mem = minimal store on a map, badger = minimal store on badger v4; $(date -u +%FT%TZ)"
