package node

import (
	"fmt"

	"github.com/quorumkv/quorumkv/internal/netaddr"
)

// Advertised addresses. A node bound to a wildcard address (0.0.0.0, ::,
// an empty host: any container) cannot tell its peers to dial what it
// bound, so Config.Advertise names the host they should use instead. Each
// listener keeps its bound port.

// WildcardListener returns the first listener of c (by its name: http,
// rpc, gossip or resp) whose address binds a wildcard host. ok is false
// when none does. A listener c does not use (resp unset, rpc or gossip
// replaced by a test seam) is skipped.
func (c Config) WildcardListener() (name, addr string, ok bool) {
	l, ok := netaddr.FirstWildcard(c.addrs())
	return l.Name, l.Addr, ok
}

type listener struct{ name, addr string }

// addrs is c.listeners() as package netaddr takes them.
func (c Config) addrs() []netaddr.Listener {
	var out []netaddr.Listener
	for _, l := range c.listeners() {
		out = append(out, netaddr.Listener{Name: l.name, Addr: l.addr})
	}
	return out
}

// listeners lists the listen addresses c uses.
func (c Config) listeners() []listener {
	var out []listener
	for _, l := range []listener{{"http", c.HTTPAddr}, {"rpc", c.RPCAddr}, {"gossip", c.GossipAddr}, {"resp", c.RESPAddr}} {
		switch {
		case l.addr == "" && l.name == "resp",
			l.addr == "" && l.name == "http" && c.RESPAddr == "",
			l.name == "rpc" && c.NewTransport != nil,
			l.name == "gossip" && c.NewMembership != nil:
			continue
		}
		out = append(out, l)
	}
	return out
}

// validateAdvertise checks Advertise, and that it is set when a listener
// binds a wildcard address.
func (c Config) validateAdvertise() error {
	if c.Advertise == "" {
		if name, addr, ok := c.WildcardListener(); ok {
			return fmt.Errorf("advertise address required: the %s listener binds %q, a wildcard address that peers cannot dial", name, addr)
		}
		return nil
	}
	if err := netaddr.ValidateAdvertiseHost(c.Advertise); err != nil {
		return fmt.Errorf("advertise address: %w", err)
	}
	return nil
}

// advertised returns the address peers and clients are told to use for a
// listener bound to bound: see netaddr.Advertised.
func (c Config) advertised(bound string) string { return netaddr.Advertised(c.Advertise, bound) }

// advertisedBeforeListen is the advertised address of a listener about to
// bind listen: see netaddr.AdvertisedBeforeListen.
func (c Config) advertisedBeforeListen(listen string) string {
	return netaddr.AdvertisedBeforeListen(c.Advertise, listen)
}

// gossipAdvertiseIP is the address memberlist announces for this node: see
// netaddr.GossipIP.
func gossipAdvertiseIP(c Config, bindHost string) (string, error) {
	return netaddr.GossipIP(c.Advertise, bindHost)
}
