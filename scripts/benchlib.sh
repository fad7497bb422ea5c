# Shell functions shared by the benchmark scripts that compare quorumkv with
# Redis (scripts/http-bench.sh, bench/peers.sh). Source it from the
# repository root: . scripts/benchlib.sh

# need_redis installs redis-server and redis-tools with apt-get (root or
# sudo) unless redis-server and redis-benchmark are already on PATH.
need_redis() {
	if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
		echo "installing redis-server and redis-tools" >&2
		local sudo=""
		[ "$(id -u)" -eq 0 ] || sudo=sudo
		$sudo apt-get update -qq
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server redis-tools >/dev/null
	fi
}

# freeport prints a TCP port free on 127.0.0.1 now (the kernel's choice).
freeport() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# median prints the median of the numbers on stdin, one a line.
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# col STORE OP COLUMN prints the median of COLUMN over the lines of
# $WORK/results whose first two fields are STORE and OP.
col() { awk -v s="$1" -v o="$2" -v c="$3" '$1==s && $2==o {print $c}' "$WORK/results" | median; }
