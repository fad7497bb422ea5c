#!/usr/bin/env bash
# Regenerates cmd/quorumkv/default.pgo, the CPU profile the Go toolchain
# uses for profile-guided optimization of the quorumkv binary (go build and
# go run pick it up by themselves: -pgo=auto). The profile is that of a local
# 3-agent cluster (N=3 R=2 W=2, --profile local, anti-entropy once a minute,
# GOMAXPROCS=1 each, as bench/peers.sh runs them) under the workloads users
# run most: RESP SET and GET (redis-benchmark, 50 clients, 100-byte values,
# 100,000 keys, all sent to n1) and HTTP PUT and GET (scripts/httpload,
# 32 clients over all three nodes). Each phase takes PROFILE_SECONDS-second CPU
# profiles of all three agents at once (the coordinator's and the replicas'
# share); the twelve are merged into one.
#
#   scripts/pgo-profile.sh                # PROFILE_SECONDS=15
#   OUT=/tmp/p.pgo scripts/pgo-profile.sh  # somewhere else
#
# The binary profiled is built with -pgo=off, so a profile never feeds on
# itself. Regenerate it after large changes to the hot paths (the write
# and read paths, the fronts, the transport, the store): a stale profile
# still builds and is still correct, only less useful. docs/ARCHITECTURE.md
# ("Built with a profile") says why, docs/BENCHMARKS.md what it gains.
# Installs redis-tools with apt-get when missing. Everything listens on
# 127.0.0.1 and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER=${PROFILE_SECONDS:-15}
OUT=${OUT:-cmd/quorumkv/default.pgo}
case $SECONDS_PER in '' | *[!0-9]*) echo "PROFILE_SECONDS must be a whole number" >&2; exit 2 ;; esac

. scripts/benchlib.sh
need_redis

WORK=$(mktemp -d "${TMPDIR:-/tmp}/quorumkv-pgo-XXXXXX")
PIDS=()
LOAD=""
cleanup() {
	[ -n "$LOAD" ] && kill "$LOAD" 2>/dev/null || true
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

echo "building quorumkv (-pgo=off) and httpload" >&2
go build -pgo=off -o "$WORK/quorumkv" ./cmd/quorumkv
go build -o "$WORK/httpload" ./scripts/httpload

declare -a HTTP RPC GOSSIP RESP PPROF
for i in 0 1 2; do
	HTTP[i]=127.0.0.1:$(freeport); RPC[i]=127.0.0.1:$(freeport); GOSSIP[i]=127.0.0.1:$(freeport)
	RESP[i]=127.0.0.1:$(freeport); PPROF[i]=127.0.0.1:$(freeport)
done
for i in 0 1 2; do
	join=()
	[ "$i" -gt 0 ] && join=(--join "${GOSSIP[0]}")
	env GOMAXPROCS=1 QUORUMKV_SECRET=pgo-profile QUORUMKV_PPROF="${PPROF[i]}" \
		"$WORK/quorumkv" agent --node-id "n$((i + 1))" --data-dir "$WORK/n$((i + 1))" \
		--http "${HTTP[i]}" --rpc "${RPC[i]}" --gossip "${GOSSIP[i]}" --resp "${RESP[i]}" \
		--profile local --ae-interval 1m --log-level warn "${join[@]}" 2>"$WORK/n$((i + 1)).log" &
	PIDS+=($!)
done
ok=0
for _ in $(seq 1 600); do
	ok=1
	for i in 0 1 2; do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "http://${HTTP[i]}/readyz")" = 200 ] || ok=0
	done
	[ "$ok" = 1 ] && break
	for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null || { cat "$WORK"/n*.log >&2; exit 1; }; done
	sleep 0.1
done
[ "$ok" = 1 ] || { echo "the cluster did not form (3 ready)" >&2; cat "$WORK"/n*.log >&2; exit 1; }

RESP0=${RESP[0]}
# Every key written once first, so SET overwrites and GET finds, as in
# bench/peers.sh's steady state.
echo "filling 100,000 keys" >&2
redis-benchmark -h "${RESP0%:*}" -p "${RESP0##*:}" -c 50 -n 200000 -d 100 -r 100000 -t set -q >/dev/null

# profile NAME: SECONDS_PER-second CPU profiles of the three agents at
# once, while the load started before it runs.
profile() {
	local i c=()
	sleep 2 # past the load's start
	for i in 0 1 2; do
		curl -sf -o "$WORK/$1-n$((i + 1)).pb" "http://${PPROF[i]}/debug/pprof/profile?seconds=$SECONDS_PER" &
		c+=($!)
	done
	for i in "${c[@]}"; do wait "$i" || { echo "profile $1: a pprof request failed" >&2; exit 1; }; done
	kill "$LOAD" 2>/dev/null || true
	wait "$LOAD" 2>/dev/null || true
	LOAD=""
	echo "  $1: profiled" >&2
}
for op in set get; do
	echo "RESP $op" >&2
	redis-benchmark -h "${RESP0%:*}" -p "${RESP0##*:}" -c 50 -n 100000000 -d 100 -r 100000 -t "$op" -q >/dev/null 2>&1 &
	LOAD=$!
	profile "resp-$op"
done
addrs=$(IFS=,; echo "${HTTP[*]}")
for op in put get; do
	echo "HTTP $op" >&2
	"$WORK/httpload" -addr "$addrs" -op "$op" -clients 32 -keys 9984 -warmup 0s \
		-duration "$((SECONDS_PER + 30))s" >/dev/null 2>&1 &
	LOAD=$!
	profile "http-$op"
done
go tool pprof -proto "$WORK"/*.pb >"$WORK/merged.pgo" 2>/dev/null
mv "$WORK/merged.pgo" "$OUT"
echo "wrote $OUT ($(wc -c <"$OUT") bytes, $(ls "$WORK"/*.pb | wc -l) profiles merged)" >&2
