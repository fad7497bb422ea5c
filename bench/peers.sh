#!/usr/bin/env bash
# Drives a local 3-node quorumkv cluster over RESP with redis-benchmark, and a
# Redis on 127.0.0.1 in the same run with the same client and settings: SET
# and GET, 50 clients, 100-byte values, 100,000 random keys, N=3 R=2 W=2 (the
# agents' defaults). ROUNDS rounds, quorumkv and Redis interleaved; prints
# every run and a markdown table of medians: ops/s, p50, p99 and CPU time per
# operation (utime+stime of all three agents, or of redis-server, from
# /proc/<pid>/stat before and after each run, divided by the requests).
#
#   bench/peers.sh                       # ROUNDS=5 REQUESTS=100000
#   ROUNDS=3 REQUESTS=50000 bench/peers.sh
#   SYNC=1 bench/peers.sh                # agents with --sync (fsync every commit)
#   SPREAD=1 bench/peers.sh              # one redis-benchmark per node, clients split
#   AGENT_ENV="GOGC=200" bench/peers.sh  # environment for the agents only
#   AGENT_ENV="GOMAXPROCS=2" bench/peers.sh  # not each agent's share of the cores (below)
#   QUORUMKV_BIN=/path/quorumkv bench/peers.sh  # a prebuilt binary (A/B runs)
#   TTL=3600 bench/peers.sh              # also "setex": SET key value EX 3600 (issue 18)
#   SECURE=1 bench/peers.sh              # also a secured cluster: TLS + tokens + AEAD (issue 13)
#   AGENT_FLAGS="--cache-size 0" bench/peers.sh       # extra agent flags, every cluster
#   ALT_FLAGS="--memory-limit off" bench/peers.sh     # also a cluster with these flags added
#   ALT_BIN=/path/other-quorumkv bench/peers.sh       # also a cluster of another binary (A/B)
#   KEEP_GOING=1 bench/peers.sh          # a failed run is reported and left out, not fatal
#   AE_INTERVAL=5s bench/peers.sh        # anti-entropy's interval (default 1m, as `quorumkv dev`)
#   PPROF=1 bench/peers.sh               # each agent serves /debug/pprof on a port of its own
#
# With PPROF=1 every agent gets QUORUMKV_PPROF=127.0.0.1:PORT, a free port
# of its own (AGENT_ENV is the same for all of them, so a fixed port there
# would stop the second and third agent of a cluster), and the script
# prints the addresses on stderr ("# pprof plain n1 127.0.0.1:PORT") as
# each cluster forms, to profile an agent while the rounds run:
#   go tool pprof -seconds 15 http://127.0.0.1:PORT/debug/pprof/profile
#
# The agents run with --profile local (fast failure detection) but with
# anti-entropy at the production default of one exchange round a minute,
# as `quorumkv dev` runs them: --profile local alone compares each
# partition every 5s (about 51 exchanges a second per agent with 256
# partitions), which cost 1.25x the CPU per SET and per GET in one run
# (docs/BENCHMARKS.md, issue 16); figures before 2026-12-06 18:00 UTC
# were taken that way.
#
# With ALT_FLAGS the script starts a second 3-agent cluster beside the
# first, its agents given ALT_FLAGS after AGENT_FLAGS, and runs it in every
# round next to the first ("quorumkv-alt" rows; after it in odd rounds,
# before it in even ones), so the cost of what the flags turn on or off is
# the ratio of the two rows of one run (issue 14: ALT_FLAGS="--memory-limit
# off" runs without the memory accounting). With ALT_BIN (a prebuilt
# binary) the second cluster runs that binary instead of the first's, with
# or without ALT_FLAGS: two builds compared in one run, as the paired
# figures of issue 16 were. It then also prints, per
# operation, the ratio of the two rows in every round (ops/s and CPU per
# operation, quorumkv / quorumkv-alt) and their median.
#
# With KEEP_GOING=1, a run for which redis-benchmark prints no result (on
# a loaded machine, a quorum write that failed under the load ends it) is
# reported on stderr and left out, and the script goes on; a round that
# lost one of its pair is left out of the ratios.
# Not with SECURE=1 or SPREAD=1.
#
# With SECURE=1 the script starts a second 3-agent cluster beside the first:
# the first then runs with no secret at all (plain TCP between nodes, plain
# RESP), the second with --secret (AEAD node-to-node), TLS on RESP and HTTP
# (a CA from `quorumkv tls init`) and a token file (redis-benchmark sends
# AUTH admin TOKEN). Both run in every round, interleaved with Redis, so the
# cost of security is the ratio of the quorumkv and quorumkv-secure rows.
#
# With TTL, each round also runs SET with a time to live (redis-benchmark's
# custom command SET key:__rand_int__ VALUE EX TTL, the value SIZE bytes of
# "x") right after the plain SET, so the cost of expiry bookkeeping on the
# write path is the ratio of the two rows of one run.
#
# redis-benchmark sends every request of a run to one node (SPREAD=1 splits
# the 50 clients over the three nodes, one redis-benchmark each, and sums
# their throughput; latencies are then the median over the three of p50/p99).
# Installs redis-server and redis-tools with apt-get when missing (root or
# sudo). Everything listens on 127.0.0.1 and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
REQUESTS=${REQUESTS:-100000}
CLIENTS=${CLIENTS:-50}
SIZE=${SIZE:-100}
KEYS=${KEYS:-100000}
SYNC=${SYNC:-0}
TTL=${TTL:-0}
SPREAD=${SPREAD:-0}
AGENT_ENV=${AGENT_ENV:-}
# Each agent schedules on its share of the cores, as `quorumkv dev` gives
# it (devcluster.CPUShareEnv): GOMAXPROCS=max(1, cores/3), unless the
# caller's environment or AGENT_ENV sets GOMAXPROCS. Before 2026-12-07
# the agents ran at the Go default (every core each: 2 on this machine).
if [ -z "${GOMAXPROCS:-}" ] && [[ "$AGENT_ENV" != *GOMAXPROCS=* ]]; then
	AGENT_ENV="GOMAXPROCS=$(($(nproc) / 3 > 0 ? $(nproc) / 3 : 1)) $AGENT_ENV"
fi
SECURE=${SECURE:-0}
AGENT_FLAGS=${AGENT_FLAGS:-}
ALT_FLAGS=${ALT_FLAGS:-}
ALT_BIN=${ALT_BIN:-}
ALT=0
[ -n "$ALT_FLAGS$ALT_BIN" ] && ALT=1
KEEP_GOING=${KEEP_GOING:-0}
AE_INTERVAL=${AE_INTERVAL:-1m}
PPROF=${PPROF:-0}
case $PPROF in 0 | 1) ;; *) echo "PPROF must be 0 or 1" >&2; exit 2 ;; esac
if [ "$ALT" = 1 ] && { [ "$SECURE" = 1 ] || [ "$SPREAD" = 1 ]; }; then
	echo "ALT_FLAGS or ALT_BIN cannot be combined with SECURE=1 or SPREAD=1" >&2
	exit 2
fi

. scripts/benchlib.sh
need_redis

WORK=$(mktemp -d "${TMPDIR:-/tmp}/quorumkv-peers-XXXXXX")
PIDS=()
REDIS_PID=""
cleanup() {
	for p in "${PIDS[@]}" $REDIS_PID; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}" $REDIS_PID; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT
SPIDS=()
cleanup_secure() {
	for p in "${SPIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${SPIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	cleanup
}
trap cleanup_secure EXIT

if [ -n "${QUORUMKV_BIN:-}" ]; then
	cp "$QUORUMKV_BIN" "$WORK/quorumkv"
else
	go build -o "$WORK/quorumkv" ./cmd/quorumkv
fi
cp "$WORK/quorumkv" "$WORK/quorumkv-alt"
[ -n "$ALT_BIN" ] && cp "$ALT_BIN" "$WORK/quorumkv-alt"

# Three agents started directly (not through `quorumkv dev`), so the script
# knows their pids and flags. start_cluster PREFIX SECURED [FLAGS] fills the
# arrays named PREFIX_HTTP, PREFIX_RESP and PREFIX_PIDS; FLAGS (a string,
# split on spaces) are added to the agents' flags after AGENT_FLAGS.
SYNCFLAG=()
[ "$SYNC" = 1 ] && SYNCFLAG=(--sync)
TOKEN=peers-bench-admin-token
if [ "$SECURE" = 1 ]; then
	"$WORK/quorumkv" tls init --dir "$WORK/tls" --hosts 127.0.0.1,localhost >/dev/null
	echo "admin admin $TOKEN" >"$WORK/tokens"
fi
start_cluster() {
	local prefix=$1 secured=$2 more=${3:-} i
	local -a http rpc gossip resp pprof pids extra env flags
	read -r -a flags <<<"$AGENT_FLAGS $more"
	local bin=$WORK/quorumkv
	[ "$prefix" = alt ] && bin=$WORK/quorumkv-alt
	for i in 0 1 2; do
		http[i]=127.0.0.1:$(freeport); rpc[i]=127.0.0.1:$(freeport)
		gossip[i]=127.0.0.1:$(freeport); resp[i]=127.0.0.1:$(freeport)
		pprof[i]=""
		[ "$PPROF" = 1 ] && pprof[i]=QUORUMKV_PPROF=127.0.0.1:$(freeport)
	done
	extra=(); env=()
	if [ "$secured" = 1 ]; then
		extra=(--tls-cert "$WORK/tls/node.pem" --tls-key "$WORK/tls/node-key.pem" --tokens "$WORK/tokens")
		env=(QUORUMKV_SECRET=peers-bench)
	elif [ "$SECURE" != 1 ]; then
		env=(QUORUMKV_SECRET=peers-bench) # the default run keeps its secret (AEAD), as before
	fi
	for i in 0 1 2; do
		local join=()
		[ "$i" -gt 0 ] && join=(--join "${gossip[0]}")
		env "${env[@]}" $AGENT_ENV ${pprof[i]} "$bin" agent --node-id "n$((i + 1))" --data-dir "$WORK/$prefix-n$((i + 1))" \
			--http "${http[i]}" --rpc "${rpc[i]}" --gossip "${gossip[i]}" --resp "${resp[i]}" \
			--profile local --ae-interval "$AE_INTERVAL" --log-level warn "${SYNCFLAG[@]}" "${extra[@]}" "${flags[@]}" "${join[@]}" 2>"$WORK/$prefix-n$((i + 1)).log" &
		pids+=($!)
	done
	local scheme=http curlargs=()
	if [ "$secured" = 1 ]; then
		scheme=https; curlargs=(--cacert "$WORK/tls/ca.pem" -H "Authorization: Bearer $TOKEN")
	fi
	alive() { curl -s "${curlargs[@]}" "$scheme://$1/cluster/members" | grep -o '"state": *"alive"' | wc -l; }
	# /readyz: the ring reads use holds all three (a new cluster takes its
	# members in one by one, a few seconds after they see each other);
	# before it, reads and writes go to fewer replicas than measured here.
	ready() { [ "$(curl -s "${curlargs[@]}" -o /dev/null -w '%{http_code}' "$scheme://$1/readyz")" = 200 ]; }
	local ok=0
	for _ in $(seq 1 600); do
		ok=1
		for i in 0 1 2; do [ "$(alive "${http[i]}")" = 3 ] && ready "${http[i]}" || ok=0; done
		[ "$ok" = 1 ] && break
		for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || { cat "$WORK"/$prefix-n*.log >&2; exit 1; }; done
		sleep 0.1
	done
	[ "$ok" = 1 ] || { echo "cluster $prefix did not form (3 alive and ready)" >&2; cat "$WORK"/$prefix-n*.log >&2; exit 1; }
	if [ "$PPROF" = 1 ]; then
		for i in 0 1 2; do echo "# pprof $prefix n$((i + 1)) ${pprof[i]#QUORUMKV_PPROF=}" >&2; done
	fi
	eval "${prefix}_HTTP=(\"\${http[@]}\")"
	eval "${prefix}_RESP=(\"\${resp[@]}\")"
	eval "${prefix}_PIDS=(\"\${pids[@]}\")"
}
start_cluster plain 0
HTTP=("${plain_HTTP[@]}"); RESP=("${plain_RESP[@]}"); PIDS=("${plain_PIDS[@]}")
if [ "$SECURE" = 1 ]; then
	start_cluster sec 1
	SPIDS=("${sec_PIDS[@]}")
fi
if [ "$ALT" = 1 ]; then
	start_cluster alt 0 "$ALT_FLAGS"
	SPIDS=("${alt_PIDS[@]}") # stopped on exit with the secured cluster's
fi

RPORT=$(freeport)
redis-server --bind 127.0.0.1 --port "$RPORT" --save '' --appendonly no --daemonize no >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
for _ in $(seq 1 100); do redis-cli -h 127.0.0.1 -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

TCK=$(getconf CLK_TCK)
ticks() { local s=0 p; for p in "$@"; do s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$s"; }

# opargs OP sets OPARGS to redis-benchmark's arguments for OP and OPPAT
# to the start of its CSV line: -t OP, or for setex a custom command.
VALUE=$(head -c "$SIZE" /dev/zero | tr '\0' x)
opargs() {
	if [ "$1" = setex ]; then
		OPARGS=(SET "key:__rand_int__" "$VALUE" EX "$TTL")
		OPPAT='^"SET key'
	else
		OPARGS=(-t "$1")
		OPPAT="^\"$1\""
	fi
}

# run NAME OP PIDS... : one redis-benchmark run, CSV line out:
# NAME OP ops/s p50_ms p99_ms cpu_us_per_op errors
run() {
	local name=$1 op=$2; shift 2
	local t0 t1 out rps p50 p99
	opargs "$op"
	t0=$(ticks "$@")
	if [ "$name" = quorumkv ] && [ "$SPREAD" = 1 ] && [ "$SECURE" != 1 ]; then
		local per=$((CLIENTS / 3)) reqs=$((REQUESTS / 3)) i bp=()
		for i in 0 1 2; do
			redis-benchmark -h 127.0.0.1 -p "${RESP[i]##*:}" -c "$per" -n "$reqs" -d "$SIZE" -r "$KEYS" --csv "${OPARGS[@]}" \
				>"$WORK/rb$i.csv" 2>"$WORK/rb$i.err" &
			bp+=($!)
		done
		wait "${bp[@]}"
		local lines
		lines=$(cat "$WORK"/rb0.csv "$WORK"/rb1.csv "$WORK"/rb2.csv | grep -i "$OPPAT" | tr -d '"') || true
		out="$(echo "$lines" | awk -F, '{s+=$2} END {print s}') $(echo "$lines" | cut -d, -f5 | sort -g | sed -n 2p) $(echo "$lines" | cut -d, -f7 | sort -g | sed -n 2p)"
	else
		local port=$RPORT sec=()
		[ "$name" = quorumkv ] && port=${RESP[0]##*:}
		[ "$name" = quorumkv-alt ] && port=${alt_RESP[0]##*:}
		if [ "$name" = quorumkv-secure ]; then
			port=${sec_RESP[0]##*:}
			sec=(--tls --cacert "$WORK/tls/ca.pem" --user admin -a "$TOKEN")
		fi
		out=$(redis-benchmark -h 127.0.0.1 -p "$port" "${sec[@]}" -c "$CLIENTS" -n "$REQUESTS" -d "$SIZE" -r "$KEYS" --csv "${OPARGS[@]}" \
			2>"$WORK/rb.err" | grep -i "$OPPAT" | tr -d '"' | awk -F, '{print $2, $5, $7}') || true
	fi
	for p in "$@"; do
		if ! kill -0 "$p" 2>/dev/null; then
			echo "$name: process $p died during the $op run; logs:" >&2
			tail -n 30 "$WORK"/*.log >&2
			exit 1
		fi
	done
	if [ -z "$out" ] || [ "${out%% *}" = "" ]; then
		echo "$name $op: redis-benchmark printed no result; its stderr:" >&2
		cat "$WORK"/rb*.err >&2
		rm -f "$WORK"/rb*.err
		[ "$KEEP_GOING" = 1 ] && return 0
		exit 1
	fi
	t1=$(ticks "$@")
	read -r rps p50 p99 <<<"$out"
	local errs
	errs=$(cat "$WORK"/rb*.err 2>/dev/null | grep -ci error) || true
	rm -f "$WORK"/rb*.err
	awk -v n="$name" -v o="$op" -v r="$rps" -v a="$p50" -v b="$p99" -v d=$((t1 - t0)) -v t="$TCK" -v q="$REQUESTS" -v e="$errs" -v k="$round" \
		'BEGIN { printf "%s %s %.0f %.3f %.3f %.1f %d %d\n", n, o, r, a, b, d / t * 1e6 / q, e, k }'
}

echo "# $(go version); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
echo "# redis: $(redis-server --version | cut -d' ' -f3); agents: sync=$SYNC env='$AGENT_ENV' ae_interval=$AE_INTERVAL flags='$AGENT_FLAGS' alt_flags='$ALT_FLAGS' alt_bin='${ALT_BIN:-the same}'; spread=$SPREAD; secure=$SECURE; binary: ${QUORUMKV_BIN:-built from this tree}"
echo "# clients=$CLIENTS requests=$REQUESTS value=${SIZE}B keys=$KEYS N=3 R=2 W=2 ttl=$TTL"
echo "# name op ops/s p50_ms p99_ms cpu_us_per_op error_lines round"
OPS="set get"
if [ "$TTL" -gt 0 ]; then OPS="set setex get"; fi
: >"$WORK/results"
for round in $(seq 1 "$ROUNDS"); do
	for op in $OPS; do
		# The alternative cluster goes first in even rounds, so that
		# neither gets the better slot every time.
		if [ "$ALT" = 1 ] && [ $((round % 2)) = 0 ]; then
			run quorumkv-alt "$op" "${SPIDS[@]}" | tee -a "$WORK/results"
		fi
		run quorumkv "$op" "${PIDS[@]}" | tee -a "$WORK/results"
		if [ "$SECURE" = 1 ]; then
			run quorumkv-secure "$op" "${SPIDS[@]}" | tee -a "$WORK/results"
		fi
		if [ "$ALT" = 1 ] && [ $((round % 2)) = 1 ]; then
			run quorumkv-alt "$op" "${SPIDS[@]}" | tee -a "$WORK/results"
		fi
		run redis "$op" "$REDIS_PID" | tee -a "$WORK/results"
	done
done

echo
echo "| store | op | ops/s | p50 ms | p99 ms | CPU µs/op |"
echo "| --- | --- | ---: | ---: | ---: | ---: |"
NAMES="quorumkv redis"
[ "$SECURE" = 1 ] && NAMES="quorumkv quorumkv-secure redis"
[ "$ALT" = 1 ] && NAMES="quorumkv quorumkv-alt redis"
for name in $NAMES; do
	for op in $OPS; do
		printf "| %s | %s | %.0f | %.3f | %.3f | %.1f |\n" "$name" "$op" \
			"$(col $name $op 3)" "$(col $name $op 4)" "$(col $name $op 5)" "$(col $name $op 6)"
	done
done
echo
echo "medians of $ROUNDS rounds; error lines from redis-benchmark: $(awk '{s+=$7} END {print s+0}' "$WORK/results")"
if [ "$ALT" = 1 ]; then
	echo
	echo "| op | ops/s quorumkv / quorumkv-alt, by round | median | CPU µs/op quorumkv / quorumkv-alt, by round | median |"
	echo "| --- | --- | ---: | --- | ---: |"
	for op in $OPS; do
		# ratio COLUMN: the rounds' ratios of COLUMN, one a line.
		ratio() {
			awk -v o="$op" -v c="$1" '$2==o && $1=="quorumkv" {a[$8]=$c} $2==o && $1=="quorumkv-alt" {b[$8]=$c}
				END {for (k in a) if (k in b && b[k] > 0) printf "%d %.2f\n", k, a[k] / b[k]}' "$WORK/results" | sort -n | cut -d' ' -f2
		}
		printf "| %s | %s | %s | %s | %s |\n" "$op" "$(ratio 3 | xargs)" "$(ratio 3 | median)" "$(ratio 6 | xargs)" "$(ratio 6 | median)"
	done
fi
