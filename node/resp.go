package node

import (
	"crypto/tls"
	"net"

	"github.com/quorumkv/quorumkv/resp"
)

// startRESP binds Config.RESPAddr; serveFronts starts serving it.
func (n *Node) startRESP() error {
	ln, err := net.Listen("tcp", n.cfg.RESPAddr)
	if err != nil {
		return startErr("resp", n.cfg.RESPAddr, err)
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
		Version:         buildVersion(),
		Started:         started,
	})
	return nil
}

// RESPAddr is the RESP listener's bound address ("" when it is off).
func (n *Node) RESPAddr() string { return n.resp.Addr() }
