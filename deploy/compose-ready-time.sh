#!/usr/bin/env bash
# Measures the time from `docker-compose up -d` of deploy/compose.yaml to
# every node answering 200 on /readyz (joined, on the ring, store
# writable), on fresh volumes, then takes the cluster down again (with its
# volumes). Needs the image (deploy/build-image.sh), curl, and the ports
# 8081-8083 and 6381-6383 free on 127.0.0.1.
#
#   deploy/compose-ready-time.sh [RUNS]     (default 3)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
runs="${1:-3}"
project="qkv-ready-time-$$"
compose=(docker-compose)
if ! command -v docker-compose >/dev/null; then compose=(docker compose); fi
dc() { "${compose[@]}" -p "$project" -f "$here/compose.yaml" "$@"; }
trap 'dc down -v --remove-orphans >/dev/null 2>&1 || true' EXIT

for run in $(seq "$runs"); do
	start=$(date +%s.%N)
	dc up -d >/dev/null 2>&1
	up=$(date +%s.%N)
	deadline=$(( $(date +%s) + 120 ))
	for port in 8081 8082 8083; do
		until curl -fsS -m 2 "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
			if [ "$(date +%s)" -gt "$deadline" ]; then
				echo "run $run: 127.0.0.1:$port not ready after 120 s" >&2
				dc logs --tail 20 >&2
				exit 1
			fi
			sleep 0.05
		done
	done
	ready=$(date +%s.%N)
	printf 'run %d: up -d returned after %.2f s; all 3 ready %.2f s after the start of up\n' \
		"$run" "$(echo "$up - $start" | bc)" "$(echo "$ready - $start" | bc)"
	dc down -v >/dev/null 2>&1
done
