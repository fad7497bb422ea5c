#!/usr/bin/env bash
# idle-cpu.sh SECONDS PID...: the CPU each process used over SECONDS, as a
# percentage of one core, from utime+stime in /proc/PID/stat (Linux). Used
# for docs/bench/firsthour.md: the pids of `quorumkv dev`'s agents are in
# the PID column of its table.
set -euo pipefail
secs=$1
shift
hz=$(getconf CLK_TCK)
declare -A before
for p in "$@"; do before[$p]=$(awk '{print $14+$15}' "/proc/$p/stat"); done
sleep "$secs"
for p in "$@"; do
	after=$(awk '{print $14+$15}' "/proc/$p/stat")
	awk -v p="$p" -v d="$((after - before[$p]))" -v hz="$hz" -v s="$secs" \
		'BEGIN { printf "pid %s: %.2f%% of a core\n", p, 100 * d / hz / s }'
done
