#!/usr/bin/env bash
# Builds the quorumkv container image: the static binary is compiled here
# (CGO off) and copied into a FROM scratch image, since no registry is
# reachable to pull a builder image (see the Dockerfile).
#
#   deploy/build-image.sh [TAG]     TAG defaults to $QUORUMKV_IMAGE, else quorumkv:latest
#
# QUORUMKV_SRC=DIR compiles the binary from another source tree (a git
# worktree of an earlier release, say) and wraps it in this tree's
# Dockerfile; the upgrade test builds the previous release's image so,
# since releases before the image have no Dockerfile of their own.
#
# It also writes deploy/secret.env, the cluster secret deploy/compose.yaml
# reads, with a new random secret if the file does not exist yet (it is
# git-ignored; keep it private, and copy it to every host of one cluster),
# and likewise an admin token: deploy/token.env (QUORUMKV_TOKEN, for
# clients; private) and deploy/tokens (its SHA-256, the agents' token
# file); QUORUMKV_COMPOSE_SECRET=0 skips that (the e2e tests do).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tag="${1:-${QUORUMKV_IMAGE:-quorumkv:latest}}"
src="${QUORUMKV_SRC:-$root}"
stage="$root/deploy/.build/image"

rm -rf "$stage"
mkdir -p "$stage/data"
echo "== go build (static) of $src -> $stage/quorumkv" >&2
(cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$stage/quorumkv" ./cmd/quorumkv)
cp "$root/deploy/image/passwd" "$root/deploy/image/group" "$stage/"

echo "== docker build -t $tag" >&2
rev="$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)"
docker build --quiet -f "$root/Dockerfile" -t "$tag" \
	--label "org.opencontainers.image.title=quorumkv" \
	--label "org.opencontainers.image.revision=$rev" \
	"$root" >/dev/null
docker image inspect -f "built {{index .RepoTags 0}}: {{.Size}} bytes" "$tag" >&2

secret="$root/deploy/secret.env"
if [ "${QUORUMKV_COMPOSE_SECRET:-1}" != 0 ] && [ ! -e "$secret" ]; then
	umask 077
	printf 'QUORUMKV_SECRET=%s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$secret"
	echo "wrote $secret: a new random cluster secret for deploy/compose.yaml" >&2
fi
tokens="$root/deploy/tokens"
if [ "${QUORUMKV_COMPOSE_SECRET:-1}" != 0 ] && [ ! -e "$tokens" ]; then
	token="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
	(umask 077 && printf 'QUORUMKV_TOKEN=%s\n' "$token" >"$root/deploy/token.env")
	# The agents (uid 10001) read it; it holds only the token's hash.
	printf '# NAME ROLE TOKEN (sha256 of the token in token.env)\nadmin admin sha256:%s\n' \
		"$(printf %s "$token" | sha256sum | cut -d' ' -f1)" >"$tokens"
	chmod 0644 "$tokens"
	echo "wrote $root/deploy/token.env (the admin token: export it for the CLI) and $tokens" >&2
fi
