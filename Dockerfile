# quorumkv: one static binary in an otherwise empty image.
#
# Build it with deploy/build-image.sh [TAG], not with a bare `docker build`:
# no container registry is reachable where this project is built, so there
# is no builder stage to pull (no golang, alpine or distroless image). The
# script compiles the binary on the host (CGO_ENABLED=0 go build, fully
# static) and stages it, with /etc/passwd and /etc/group lines for the
# quorumkv user and an empty /data, in deploy/.build/image/; this file's
# only FROM is scratch and its COPYs take those files from the build
# context (.dockerignore sends nothing else).
#
# Run: every agent setting is an environment variable QUORUMKV_<NAME>
# (`quorumkv agent -h`). The listeners bind every interface, so each
# container needs QUORUMKV_ADVERTISE (its name or IP as peers and clients
# reach it), plus QUORUMKV_NODE_ID, QUORUMKV_SECRET and QUORUMKV_JOIN:
#   docker run -e QUORUMKV_NODE_ID=n1 -e QUORUMKV_ADVERTISE=n1 \
#     -e QUORUMKV_SECRET=... -e QUORUMKV_JOIN=n1:7947,n2:7947,n3:7947 \
#     --hostname n1 --network qkv -v n1-data:/data quorumkv:latest
# deploy/compose.yaml starts three; deploy/kubernetes/ has manifests.
FROM scratch

COPY deploy/.build/image/passwd deploy/.build/image/group /etc/
# Owned by the quorumkv user, so a named volume mounted here (which Docker
# fills from the image when empty) is writable by it.
COPY --chown=10001:10001 deploy/.build/image/data /data
COPY deploy/.build/image/quorumkv /usr/local/bin/quorumkv

# Non-root, by number: nothing in the image needs a name to resolve it.
USER 10001:10001

ENV QUORUMKV_DATA_DIR=/data \
    QUORUMKV_HTTP=0.0.0.0:8080 \
    QUORUMKV_RPC=0.0.0.0:7946 \
    QUORUMKV_GOSSIP=0.0.0.0:7947 \
    QUORUMKV_RESP=0.0.0.0:6379

VOLUME ["/data"]

# 8080 HTTP client API (/kv, /cluster, /status, /metrics, /healthz, /readyz)
# 6379 RESP (Redis protocol) client API
# 7946 node-to-node RPC (peers only)
# 7947 gossip, TCP and UDP (peers only)
EXPOSE 8080/tcp 6379/tcp 7946/tcp 7947/tcp 7947/udp

# Ready: joined, on the ring, store writable, not shutting down (/readyz).
# The start period covers joining the other members.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/quorumkv", "health", "--timeout", "3s"]

ENTRYPOINT ["/usr/local/bin/quorumkv"]
CMD ["agent"]
