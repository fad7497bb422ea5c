package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"
)

// Advertised addresses. A node bound to a wildcard address (0.0.0.0, ::,
// an empty host: any container) cannot tell its peers to dial what it
// bound, so Config.Advertise names the host they should use instead. Each
// listener keeps its bound port.

// maxHostLen bounds an advertised host name (DNS allows 253 characters).
const maxHostLen = 253

// hostNamePattern is a DNS name as container runtimes and Kubernetes hand
// them out: letters, digits, dots, dashes and underscores (Compose v1
// container names have underscores), starting and ending with a letter or
// digit.
var hostNamePattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)

// IsWildcardHost reports whether host, the host part of a listen address,
// means every interface: "", 0.0.0.0, :: (with or without brackets) or any
// other unspecified address.
func IsWildcardHost(host string) bool {
	h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if h == "" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsUnspecified()
}

// WildcardListener returns the first listener of c (by its name: http,
// rpc, gossip or resp) whose address binds a wildcard host. ok is false
// when none does. A listener c does not use (resp unset, rpc or gossip
// replaced by a test seam) is skipped.
func (c Config) WildcardListener() (name, addr string, ok bool) {
	for _, l := range c.listeners() {
		host, _, err := net.SplitHostPort(l.addr)
		if err == nil && IsWildcardHost(host) {
			return l.name, l.addr, true
		}
	}
	return "", "", false
}

type listener struct{ name, addr string }

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

// ValidateAdvertiseHost checks an advertised host: an IP address (IPv6
// with or without brackets) or a DNS name, without a port, and not a
// wildcard address.
func ValidateAdvertiseHost(h string) error {
	switch {
	case h == "":
		return errors.New("empty")
	case IsWildcardHost(h):
		return fmt.Errorf("%q is a wildcard address: peers cannot dial it; give this node's own address or name", h)
	case len(h) > maxHostLen:
		return fmt.Errorf("%d characters: a host name has at most %d", len(h), maxHostLen)
	}
	if net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")) != nil {
		return nil
	}
	if _, port, err := net.SplitHostPort(h); err == nil && isDigits(port) {
		return fmt.Errorf("%q: want a host name or IP address without a port (each listener keeps its own port)", h)
	}
	if !hostNamePattern.MatchString(h) || strings.Contains(h, "..") {
		return fmt.Errorf("%q: want an IP address or a host name of letters, digits, dots, dashes and underscores", h)
	}
	return nil
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
	if err := ValidateAdvertiseHost(c.Advertise); err != nil {
		return fmt.Errorf("advertise address: %w", err)
	}
	return nil
}

// advertiseHost is Advertise without IPv6 brackets ("" when unset).
func (c Config) advertiseHost() string {
	return strings.TrimSuffix(strings.TrimPrefix(c.Advertise, "["), "]")
}

// advertised returns the address peers and clients are told to use for a
// listener bound to bound (host:port): bound itself without Advertise,
// else the advertised host with the bound port. An address that is not
// host:port (an in-memory transport's) is returned as is.
func (c Config) advertised(bound string) string {
	if c.Advertise == "" || bound == "" {
		return bound
	}
	_, port, err := net.SplitHostPort(bound)
	if err != nil {
		return bound
	}
	return net.JoinHostPort(c.advertiseHost(), port)
}

// advertiseResolveTimeout bounds the lookup of an advertised name at start.
// A container's or pod's own name may take a moment to appear in DNS, so
// the lookup is retried until then.
const advertiseResolveTimeout = 10 * time.Second

// gossipAdvertiseIP is the address memberlist announces for this node.
// memberlist carries IP addresses only, so an advertised name is resolved
// (once, at start; an IPv4 address is preferred). Without Advertise it is
// the bound host, as before advertised addresses existed.
func gossipAdvertiseIP(c Config, bindHost string) (string, error) {
	h := c.advertiseHost()
	if h == "" {
		return bindHost, nil
	}
	if net.ParseIP(h) != nil {
		return h, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), advertiseResolveTimeout)
	defer cancel()
	var lastErr error
	for {
		ips, err := net.DefaultResolver.LookupIPAddr(ctx, h)
		if err == nil && len(ips) > 0 {
			return pickIP(ips), nil
		}
		if err == nil {
			err = errors.New("no addresses")
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("advertise host %q: resolve for gossip (which carries IP addresses): %w", h, lastErr)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// pickIP prefers the first IPv4 address, else the first.
func pickIP(ips []net.IPAddr) string {
	for _, ip := range ips {
		if ip.IP.To4() != nil {
			return ip.IP.String()
		}
	}
	return ips[0].IP.String()
}

// advertisedBeforeListen is the advertised address of a listener that is
// about to bind listen, for a transport that must know it up front; ""
// (the transport then reports its bound address) without Advertise or
// when the port is 0 and so not known yet.
func (c Config) advertisedBeforeListen(listen string) string {
	if _, port, err := net.SplitHostPort(listen); err != nil || port == "0" || c.Advertise == "" {
		return ""
	}
	return c.advertised(listen)
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
