#!/usr/bin/env bash
# A long run of a local 3-node cluster (`quorumkv dev --nodes 3`, no fsync,
# N=3 R=2 W=2) under a steady write load, sampled each minute, to see
# whether memory, goroutines or latency drift: two kvload drivers against
# node 1 at once, CLIENTS/2 RESP SET clients and CLIENTS/2 HTTP PUT clients
# (overwrites, 100-byte values over 100,000 keys, closed loop: as fast as
# the cluster answers). Each minute it prints the drivers' throughput and
# p99 over that minute, the agents' resident memory (VmRSS from
# /proc/<pid>/status) and goroutine counts (go_goroutines from /metrics),
# and the Go soft memory limit the GC pacer set (go_gc_gomemlimit_bytes:
# the heap grows to it between collections, so RssAnon follows it),
# then a summary: each series' spread around its median and its first
# and last minute. Every FINE seconds (default 5) it also samples what
# the resident memory is made of, and the summary gives each part's
# spread per agent: RssAnon (the Go heap and runtime) and RssFile
# (mapped files: badger's memtable logs and tables) from /proc, and
# from /metrics the heap in use, its goal (go_memstats_next_gc_bytes)
# and the heap the runtime holds unused and not yet returned to the OS
# (heap_idle less heap_released); GCs counts the collections.
#
#   bench/soak.sh                        # DURATION=10m CLIENTS=50
#   QUORUMKV_BIN=/path/quorumkv DURATION=3m bench/soak.sh
#
# Everything listens on 127.0.0.1 and is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10m}
CLIENTS=${CLIENTS:-50}
EVERY=${EVERY:-1m}
FINE=${FINE:-5}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/quorumkv-soak-XXXXXX")
DEV=""
LOADS=()
FINEPID=""
cleanup() {
	for p in "${LOADS[@]}" $FINEPID; do kill "$p" 2>/dev/null || true; done
	[ -n "$DEV" ] && kill -INT "$DEV" 2>/dev/null && wait "$DEV" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

go build -o "$WORK/kvload" ./scripts/kvload
if [ -n "${QUORUMKV_BIN:-}" ]; then cp "$QUORUMKV_BIN" "$WORK/quorumkv"; else go build -o "$WORK/quorumkv" ./cmd/quorumkv; fi
"$WORK/quorumkv" dev --nodes 3 --dir "$WORK/c" </dev/null >"$WORK/dev.out" 2>"$WORK/dev.err" &
DEV=$!
for _ in $(seq 1 300); do grep -q "Ctrl-C stops every node." "$WORK/dev.out" 2>/dev/null && break; sleep 0.1; done
grep -q "Ctrl-C stops every node." "$WORK/dev.out" || { echo "dev did not come up" >&2; cat "$WORK/dev.err" >&2; exit 1; }
read -r -a PIDS <<<"$(awk '$1 ~ /^n[0-9]+$/ {printf "%s ", $2}' "$WORK/dev.out")"
read -r -a HTTPS <<<"$(awk '$1 ~ /^n[0-9]+$/ {printf "%s ", $3}' "$WORK/dev.out")"
RESP1=$(awk '$1 == "n1" {print $6}' "$WORK/dev.out")

rss_mib() { awk '/^VmRSS:/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
goroutines() { curl -s "http://$1/metrics" | awk '$1 == "go_goroutines" {print $2}'; }
softlimit_mib() { curl -s "http://$1/metrics" | awk '$1 == "go_gc_gomemlimit_bytes" {printf "%.0f", $2 / 1048576}'; }
sample() { # minute: RSS and goroutines of every agent, then their soft memory limits, one line
	local out="$1" i
	for i in "${!PIDS[@]}"; do out="$out $(rss_mib "${PIDS[i]}") $(goroutines "${HTTPS[i]}")"; done
	for i in "${!PIDS[@]}"; do out="$out $(softlimit_mib "${HTTPS[i]}")"; done
	echo "$out"
}
# fine: every FINE seconds under load, one line per agent: elapsed_s agent
# VmRSS RssAnon RssFile (KiB), heap in use, heap goal, heap idle not
# released (bytes), GCs so far.
fine() {
	local t0 i
	t0=$(date +%s)
	while :; do
		for i in "${!PIDS[@]}"; do
			echo "$(($(date +%s) - t0)) n$((i + 1)) $(awk '/^(VmRSS|RssAnon|RssFile):/ {printf "%s ", $2}' "/proc/${PIDS[i]}/status")$(curl -s "http://${HTTPS[i]}/metrics" | awk '
				$1 == "go_memstats_heap_inuse_bytes" {u = $2} $1 == "go_memstats_next_gc_bytes" {g = $2}
				$1 == "go_memstats_heap_idle_bytes" {d = $2} $1 == "go_memstats_heap_released_bytes" {r = $2}
				$1 == "go_gc_duration_seconds_count" {c = $2} END {printf "%.0f %.0f %.0f %d", u, g, d - r, c}')"
		done
		sleep "$FINE"
	done
}

echo "# $(go version); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# duration=$DURATION clients=$CLIENTS (half RESP SET, half HTTP PUT) binary: ${QUORUMKV_BIN:-built from this tree}"
sample 0 >"$WORK/samples"
fine >"$WORK/fine" &
FINEPID=$!
half=$((CLIENTS / 2))
"$WORK/kvload" -proto resp -addr "$RESP1" -op set -clients "$half" -duration "$DURATION" -warmup 0s -report "$EVERY" >"$WORK/resp.out" 2>&1 &
LOADS+=($!)
"$WORK/kvload" -proto http -addr "${HTTPS[0]}" -op set -clients "$((CLIENTS - half))" -duration "$DURATION" -warmup 0s -report "$EVERY" >"$WORK/http.out" 2>&1 &
LOADS+=($!)
# Sample 2 s before each interval ends, under load (the last interval ends
# with the load).
secs() { local d=$1; case $d in *m) echo $((${d%m} * 60)) ;; *s) echo "${d%s}" ;; *) echo "$d" ;; esac; }
total=$(secs "$DURATION"); step=$(secs "$EVERY"); start=$(date +%s)
for ((t = step; t <= total; t += step)); do
	d=$((start + t - 2 - $(date +%s)))
	[ "$d" -gt 0 ] && sleep "$d"
	sample $((t / step)) >>"$WORK/samples"
done
wait "${LOADS[@]}"
LOADS=()
kill "$FINEPID" 2>/dev/null || true
FINEPID=""
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "| interval | RESP SET/s | RESP p99 ms | HTTP PUT/s | HTTP p99 ms | RSS MiB n1 / n2 / n3 | goroutines n1 / n2 / n3 | Go soft limit MiB n1 / n2 / n3 |"
echo "| ---: | ---: | ---: | ---: | ---: | --- | --- | --- |"
awk 'FNR == 1 {f++} f == 1 && $1 == "interval" {r[++nr] = $3 " " $5} f == 2 && $1 == "interval" {h[++nh] = $3 " " $5}
	f == 3 {m = $1; s[m] = $0}
	END {
		for (m = 0; m in s; m++) {
			split(s[m], x, " ")
			rr = "-"; rp = "-"; hh = "-"; hp = "-"
			if (m in r) { split(r[m], a, " "); rr = a[1]; rp = sprintf("%.1f", a[2] / 1000) }
			if (m in h) { split(h[m], b, " "); hh = b[1]; hp = sprintf("%.1f", b[2] / 1000) }
			printf "| %d | %s | %s | %s | %s | %s / %s / %s | %s / %s / %s | %s / %s / %s |\n", m, rr, rp, hh, hp, x[2], x[4], x[6], x[3], x[5], x[7], x[8], x[9], x[10]
		}
	}' "$WORK/resp.out" "$WORK/http.out" "$WORK/samples"
echo
# spread NAME VALUES...: the values' range around their median, in %.
spread() {
	local name=$1; shift
	printf '%s\n' "$@" | sort -g | awk -v n="$name" '{a[NR] = $1} END {
		med = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
		printf "- %s: median %s, min %s (%+.1f%%), max %s (%+.1f%%)\n", n, med, a[1], (a[1] - med) * 100 / med, a[NR], (a[NR] - med) * 100 / med }'
}
# From minute 1 on: minute 0 is the idle cluster before the load.
for i in 0 1 2; do
	spread "n$((i + 1)) RSS MiB (minutes 1-)" $(awk -v c=$((2 + 2 * i)) '$1 >= 1 {print $c}' "$WORK/samples")
	# From minute 3 on, when the data has reached its size (the tables hold
	# the 100,000 keys once) and the pacer its plateau.
	[ "$(awk '$1 >= 3' "$WORK/samples" | wc -l)" -gt 0 ] &&
		spread "n$((i + 1)) RSS MiB (minutes 3-)" $(awk -v c=$((2 + 2 * i)) '$1 >= 3 {print $c}' "$WORK/samples")
	spread "n$((i + 1)) goroutines (minutes 1-)" $(awk -v c=$((3 + 2 * i)) '$1 >= 1 {print $c}' "$WORK/samples")
done
spread "RESP SET p99 µs" $(awk '$1 == "interval" {print $5}' "$WORK/resp.out")
spread "HTTP PUT p99 µs" $(awk '$1 == "interval" {print $5}' "$WORK/http.out")
# Drift rather than churn: within a minute VmRSS moves with the collector's
# cycle (the heap refills pages the scavenger returned) and the memtable
# log's pages; the median of each minute's FINE samples moves only when the
# memory does.
for i in 0 1 2; do
	meds=$(awk -v n="n$((i + 1))" '$2 == n && NF >= 9 {m = int($1 / 60) + 1; if (m >= 3) print m, $3 / 1024}' "$WORK/fine" | sort -k1,1n -k2,2g |
		awk '{if ($1 != m && c) {printf "%.0f\n", v[int((c + 1) / 2)]; c = 0} m = $1; v[++c] = $2} END {if (c) printf "%.0f\n", v[int((c + 1) / 2)]}')
	[ -n "$meds" ] && spread "n$((i + 1)) VmRSS MiB, each minute's median of the ${FINE}-s samples (minutes 3-)" $meds
done
echo
echo "What the resident memory is made of, sampled every ${FINE} s from the end of minute 1 (MiB; median, min and max, and max - min as % of the median):"
echo
echo "| agent | VmRSS | RssAnon | RssFile | heap in use | heap goal | heap idle, not released | GCs |"
echo "| --- | --- | --- | --- | --- | --- | --- | ---: |"
for i in 0 1 2; do
	row="| n$((i + 1)) |"
	for c in 3 4 5 6 7 8; do
		row="$row $(awk -v n="n$((i + 1))" -v c=$c '$2 == n && $1 >= 60 && NF >= 9 {print ((c <= 5) ? $c / 1024 : $c / 1048576)}' "$WORK/fine" | sort -g | awk '{a[NR] = $1} END {
			if (NR == 0) { printf "-"; exit }
			med = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
			printf "%.0f (%.0f-%.0f, %.0f%%)", med, a[1], a[NR], (med > 0) ? (a[NR] - a[1]) * 100 / med : 0 }') |"
	done
	row="$row $(awk -v n="n$((i + 1))" '$2 == n && $1 >= 60 && NF >= 9 {if (!s) {f = $9; s = 1} l = $9} END {print l - f}' "$WORK/fine") |"
	echo "$row"
done
echo
echo "- first and last minute, RSS MiB n1: $(awk '$1 == 1 {print $2}' "$WORK/samples") -> $(tail -n1 "$WORK/samples" | cut -d' ' -f2); goroutines n1: $(awk '$1 == 1 {print $3}' "$WORK/samples") -> $(tail -n1 "$WORK/samples" | cut -d' ' -f3)"
echo "- errors: RESP $(awk '$1 == "interval" {s += $7} END {print s + 0}' "$WORK/resp.out"), HTTP $(awk '$1 == "interval" {s += $7} END {print s + 0}' "$WORK/http.out")"
grep -h "first error" "$WORK"/resp.out "$WORK"/http.out || true
