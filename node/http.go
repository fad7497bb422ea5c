package node

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/quorumkv/quorumkv/antientropy"
	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/backup"
	"github.com/quorumkv/quorumkv/httpapi"
	"github.com/quorumkv/quorumkv/ringstage"
)

func (n *Node) startHTTP() error {
	ln, err := net.Listen("tcp", n.cfg.HTTPAddr)
	if err != nil {
		return startErr("http", n.cfg.HTTPAddr, err)
	}
	if ln, err = n.capConns("http", ln, n.limits.HTTPConns, nil); err != nil {
		return err
	}
	n.httpLn = ln
	h, err := n.secureHandler(n.Handler(), ln.Addr().String())
	if err != nil {
		return startErr("http-allowed-hosts", strings.Join(n.cfg.Security.AllowedHosts, ","), err)
	}
	n.httpSrv = &http.Server{Handler: h}
	n.limits.HTTPTimeouts.Apply(n.httpSrv)
	if t := n.cfg.Security.TLS; t != nil {
		n.httpSrv.TLSConfig = t.ServerConfig("h2", "http/1.1")
	}
	return nil
}

// serveFronts starts serving the client ports bound by startHTTP and
// startRESP. New calls it last: a request must never see a node whose
// wiring (membership, loops) is still being written.
func (n *Node) serveFronts() {
	ln := n.httpLn
	n.goFunc(func() {
		serve := n.httpSrv.Serve
		if n.httpSrv.TLSConfig != nil {
			serve = func(ln net.Listener) error { return n.httpSrv.ServeTLS(ln, "", "") }
		}
		if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http server", "err", err)
		}
	})
	if s := n.resp; s != nil {
		s.Serve()
	}
}

// Handler returns the client API: package httpapi's handler over the
// node, with the routes about the node's own life added.
func (n *Node) Handler() http.Handler {
	h := httpapi.New(frontBackend{n}, n, httpapi.Config{
		NodeID:          n.cfg.NodeID,
		MaxKeySize:      n.cfg.MaxKeySize,
		MaxValueSize:    n.cfg.MaxValueSize,
		Defaults:        n.cfg.Defaults,
		Contexts:        n,
		Log:             n.log,
		Requests:        n.metrics.requests,
		Latency:         n.metrics.latency,
		QuorumFailures:  n.metrics.quorumFailures,
		SiblingsPerRead: n.metrics.siblingsPerRead,
		BodyPace:        n.limits.BodyPace,
		ReplyPace:       n.cfg.Limits.ReplyPace,
		Budget:          n.limits.Budget,
		Now:             n.now,
	})
	h.HandleFunc("GET /healthz", n.handleHealth)
	h.HandleFunc("GET /readyz", n.handleReady)
	h.Handle("GET /metrics", promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{}))
	h.HandleFunc("POST /admin/repair", antientropy.ServeRepair(n.Repair, func() int { return n.Ring().Partitions() }))
	h.HandleFunc("POST /admin/leave", n.handleLeave)
	h.HandleFunc("POST /admin/remove", n.handleRemove)
	h.HandleRingStaging(ringstage.Stager{H: stageHost{n}, Store: n.st, Ctx: n.ctx})
	h.HandleFunc("GET /cluster/transfers", n.handleTransfers)
	bh := backup.Handlers{Host: backupHost{n}, Log: n.log}
	h.HandleFunc("GET /admin/backup/{what}", bh.Stream)
	h.HandleFunc("POST /admin/backup/merge", bh.Merge)
	return h
}

// writeJSON and writeError answer the node's own routes as httpapi does.
func writeJSON(w http.ResponseWriter, status int, v any) { httpapi.WriteJSON(w, status, v) }

func writeError(w http.ResponseWriter, status int, code, msg string) {
	httpapi.WriteError(w, status, code, msg)
}

func (n *Node) handleHealth(w http.ResponseWriter, r *http.Request) {
	if n.closing.Load() {
		writeError(w, http.StatusServiceUnavailable, api.CodeShuttingDown, "node is shutting down")
		return
	}
	if st, ok := n.secretStatus(); ok && st.JoinFailing && n.liveOthers() == 0 {
		// Alone because every seed refused our secret: not a working
		// member of the cluster it was told to join.
		writeJSON(w, http.StatusServiceUnavailable, api.Health{Status: "unhealthy", Node: n.cfg.NodeID, PID: os.Getpid(),
			Code: api.CodeSecretMismatch, Error: fmt.Sprintf("cluster secret mismatch: the seeds %s use another secret (or none), so this node joined no cluster; give every node the same --secret or QUORUMKV_SECRET", st.Peer)})
		return
	}
	writeJSON(w, http.StatusOK, api.Health{Status: "ok", Node: n.cfg.NodeID, PID: os.Getpid()})
}

// secretStatus is what gossip saw of peers with another cluster secret;
// ok is false with a membership that cannot tell (nodetest's).
func (n *Node) secretStatus() (secretStatus, bool) {
	sw, ok := n.ml.(interface{ secretStatus() secretStatus })
	if !ok {
		return secretStatus{}, false
	}
	return sw.secretStatus(), true
}
