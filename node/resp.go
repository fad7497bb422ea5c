package node

import (
	"crypto/tls"
	"net"

	"github.com/quorumkv/quorumkv/connlimit"
	"github.com/quorumkv/quorumkv/internal/buildinfo"
	"github.com/quorumkv/quorumkv/resp"
)

// startRESP binds Config.RESPAddr; serveFronts starts serving it.
func (n *Node) startRESP() error {
	ln, err := net.Listen("tcp", n.cfg.RESPAddr)
	if err != nil {
		return startErr("resp", n.cfg.RESPAddr, err)
	}
	// The caps go inside TLS, so a refused connection costs no
	// handshake; the plain-text refusal line only without TLS.
	refuse := connlimit.RefuseWith([]byte("-ERR max number of clients reached\r\n"))
	if n.cfg.Security.TLS != nil {
		refuse = nil
	}
	if ln, err = n.capConns("resp", ln, n.limits.RESPConns, refuse); err != nil {
		return err
	}
	if t := n.cfg.Security.TLS; t != nil {
		ln = tls.NewListener(ln, t.ServerConfig())
	}
	n.resp = resp.New(ln, frontBackend{n}, resp.Config{
		MaxKeySize:      n.cfg.MaxKeySize,
		MaxValueSize:    n.cfg.MaxValueSize,
		Defaults:        n.cfg.Defaults,
		Contexts:        n,
		Auth:            n.cfg.Security.Auth,
		Log:             n.log,
		Registry:        n.metrics.reg,
		QuorumFailures:  n.metrics.quorumFailures,
		SiblingsPerRead: n.metrics.siblingsPerRead,
		Version:         buildinfo.Version(),
		Started:         started,
		Timeouts:        n.limits.RESPTimeouts,
		Budget:          n.limits.Budget,
		Now:             n.now,
	})
	return nil
}

// RESPAddr is the RESP listener's bound address ("" when it is off).
func (n *Node) RESPAddr() string { return n.resp.Addr() }
