#!/usr/bin/env bash
# Compares quorumkv's two client fronts with the same Go client
# (scripts/kvload) and the same concurrency: HTTP PUT/GET and RESP SET/GET
# against node 1 of a local 3-node cluster (`quorumkv dev --nodes 3`, no
# fsync, N=3 R=2 W=2), 50 keep-alive clients, 100-byte values over 100,000
# keys. A SET is an overwrite on both fronts, so both run the same
# coordinator path. ROUNDS rounds, the fronts interleaved; prints every run
# and a table of medians: ops/s, p50, p99, CPU µs per op (utime+stime of
# the three agents from /proc/<pid>/stat, divided by the requests served),
# the client's CPU µs per op likewise (GNU time; 0 without it) and the
# HTTP/RESP ratio.
#
# The HTTP client is kvload's raw one (CLIENT=raw, the default): one
# connection per client, written and parsed in place, as lean as its RESP
# client, so that the fronts and not the clients are compared (the client
# shares the cores with the agents). CLIENT=nethttp uses net/http's Client,
# whose Transport costs the client more CPU per request and so lowers the
# HTTP figure on a shared machine.
#
#   bench/http-resp.sh                          # ROUNDS=5 DURATION=10s CLIENTS=50 CLIENT=raw
#   CLIENT=nethttp bench/http-resp.sh           # HTTP through net/http's Client
#   QUORUMKV_BINS="/tmp/old /tmp/new" bench/http-resp.sh   # one cluster per binary, interleaved
#
# Everything listens on 127.0.0.1 and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
CLIENTS=${CLIENTS:-50}
SIZE=${SIZE:-100}
KEYS=${KEYS:-100000}
CLIENT=${CLIENT:-raw}

. scripts/benchlib.sh

WORK=$(mktemp -d "${TMPDIR:-/tmp}/quorumkv-httpresp-XXXXXX")
DEVS=()
cleanup() {
	for p in "${DEVS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
	for p in "${DEVS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

go build -o "$WORK/kvload" ./scripts/kvload
BINS=()
NAMES=()
if [ -n "${QUORUMKV_BINS:-}" ]; then
	i=0
	for b in $QUORUMKV_BINS; do
		cp "$b" "$WORK/quorumkv$i"; BINS+=("$WORK/quorumkv$i"); NAMES+=("$i:$(basename "$b")"); i=$((i + 1))
	done
else
	go build -o "$WORK/quorumkv0" ./cmd/quorumkv
	BINS=("$WORK/quorumkv0"); NAMES=("0:tree")
fi

# start_dev I: a dev cluster of binary I; sets PIDS_I, HTTP_I and RESP_I
# (node 1's addresses).
start_dev() {
	local i=$1
	"${BINS[i]}" dev --nodes 3 --dir "$WORK/c$i" </dev/null >"$WORK/dev$i.out" 2>"$WORK/dev$i.err" &
	DEVS+=($!)
	for _ in $(seq 1 300); do
		grep -q "Ctrl-C stops every node." "$WORK/dev$i.out" 2>/dev/null && break
		sleep 0.1
	done
	grep -q "Ctrl-C stops every node." "$WORK/dev$i.out" || { echo "dev $i did not come up" >&2; cat "$WORK/dev$i.err" >&2; exit 1; }
	eval "PIDS_$i=\"$(awk '$1 ~ /^n[0-9]+$/ {printf "%s ", $2}' "$WORK/dev$i.out")\""
	eval "HTTP_$i=$(awk '$1 == "n1" {print $3}' "$WORK/dev$i.out")"
	eval "RESP_$i=$(awk '$1 == "n1" {print $6}' "$WORK/dev$i.out")"
}
for i in "${!BINS[@]}"; do start_dev "$i"; done

TCK=$(getconf CLK_TCK)
# The client's own CPU (user+system, from GNU time when installed): what
# the agents did not get of the two cores.
TIME=()
if [ -x /usr/bin/time ]; then TIME=(/usr/bin/time -f "%U %S" -o "$WORK/time"); fi
ticks() { local s=0 p; for p in "$@"; do s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$s"; }

# run I PROTO OP: one kvload run against cluster I; prints
# NAME OP ops/s p50_us p99_us cpu_us_per_op errors client_cpu_us_per_op
run() {
	local i=$1 proto=$2 op=$3 addr pids t0 t1 line
	pids=$(eval echo "\$PIDS_$i")
	if [ "$proto" = http ]; then addr=$(eval echo "\$HTTP_$i"); else addr=$(eval echo "\$RESP_$i"); fi
	t0=$(ticks $pids)
	echo "0 0" >"$WORK/time"
	line=$("${TIME[@]}" "$WORK/kvload" -proto "$proto" -addr "$addr" -op "$op" -clients "$CLIENTS" -duration "$DURATION" \
		-value-size "$SIZE" -keys "$KEYS" -http-client "$CLIENT")
	t1=$(ticks $pids)
	# kvload: proto op clients ops/s p50 p99 p999 ok errors; CPU over
	# warm-up and measured time, divided by the requests of both (ok/s
	# times their length is the best estimate kvload gives).
	awk -v n="$proto$i" -v d=$((t1 - t0)) -v t="$TCK" -v dur="${DURATION%s}" -v kc="$(awk '{print $1 + $2}' "$WORK/time")" '{
		reqs = $4 * (dur + 1)
		printf "%s %s %.0f %d %d %.1f %d %.1f\n", n, $2, $4, $5, $6, d / t * 1e6 / reqs, $9, kc * 1e6 / reqs }' <<<"$line"
}

echo "# $(go version); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# clients=$CLIENTS duration=$DURATION value=${SIZE}B keys=$KEYS N=3 R=2 W=2; HTTP client: kvload -http-client=$CLIENT; binaries: ${QUORUMKV_BINS:-built from this tree}"
echo "# name op ops/s p50_us p99_us cpu_us_per_op errors client_cpu_us_per_op"
: >"$WORK/results"
# Every second round runs the binaries and the fronts in reverse order, so
# neither gains from always running first (ABBA).
for round in $(seq 1 "$ROUNDS"); do
	order=("${!BINS[@]}"); protos="resp http"
	if [ $((round % 2)) = 0 ]; then order=($(printf '%s\n' "${order[@]}" | tac)); protos="http resp"; fi
	for op in set get; do
		for i in "${order[@]}"; do
			for proto in $protos; do run "$i" "$proto" "$op" | tee -a "$WORK/results"; done
		done
	done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "| binary | op | RESP ops/s | RESP p99 µs | RESP CPU µs/op | RESP client CPU µs/op | HTTP ops/s | HTTP p99 µs | HTTP CPU µs/op | HTTP client CPU µs/op | HTTP/RESP ops/s |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for i in "${!BINS[@]}"; do
	for op in set get; do
		ratio=$(awk -v o="$op" -v h="http$i" -v r="resp$i" '$2==o && $1==r {rs[++nr]=$3} $2==o && $1==h {hs[++nh]=$3}
			END {for (k=1; k<=nr && k<=nh; k++) printf "%.3f\n", hs[k]/rs[k]}' "$WORK/results" | median)
		printf "| %s | %s | %.0f | %.0f | %.1f | %.1f | %.0f | %.0f | %.1f | %.1f | %.3f |\n" "${NAMES[i]}" "$op" \
			"$(col resp$i $op 3)" "$(col resp$i $op 5)" "$(col resp$i $op 6)" "$(col resp$i $op 8)" \
			"$(col http$i $op 3)" "$(col http$i $op 5)" "$(col http$i $op 6)" "$(col http$i $op 8)" "$ratio"
	done
done
echo
echo "medians of $ROUNDS rounds (the ratio is the median of the per-round ratios); errors: $(awk '{s+=$7} END {print s+0}' "$WORK/results")"
