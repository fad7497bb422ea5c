// Package netaddr decides about the addresses a node publishes: whether a
// listen host is a wildcard, whether an advertised host is one peers can
// dial, which address stands for a listener, and which IP an advertised
// name stands for where only IP addresses are carried (gossip).
package netaddr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"
)

// maxHostLen bounds an advertised host name (DNS allows 253 characters).
const maxHostLen = 253

// hostNamePattern is a DNS name as container runtimes and Kubernetes hand
// them out: letters, digits, dots, dashes and underscores (Compose v1
// container names have underscores), starting and ending with a letter or
// digit.
var hostNamePattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)

// Unbracket is host without IPv6 brackets.
func Unbracket(host string) string {
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}

// IsWildcardHost reports whether host, the host part of a listen address,
// means every interface: "", 0.0.0.0, :: (with or without brackets) or any
// other unspecified address.
func IsWildcardHost(host string) bool {
	h := Unbracket(host)
	if h == "" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsUnspecified()
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
	if net.ParseIP(Unbracket(h)) != nil {
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

// Advertised returns the address peers and clients are told to use for a
// listener bound to bound (host:port): bound itself without an advertised
// host, else that host with the bound port. An address that is not
// host:port (an in-memory transport's) is returned as is.
func Advertised(advertise, bound string) string {
	if advertise == "" || bound == "" {
		return bound
	}
	_, port, err := net.SplitHostPort(bound)
	if err != nil {
		return bound
	}
	return net.JoinHostPort(Unbracket(advertise), port)
}

// AdvertisedBeforeListen is the advertised address of a listener that is
// about to bind listen, for a transport that must know it up front; ""
// (the transport then reports its bound address) without an advertised
// host or when the port is 0 and so not known yet.
func AdvertisedBeforeListen(advertise, listen string) string {
	if _, port, err := net.SplitHostPort(listen); err != nil || port == "0" || advertise == "" {
		return ""
	}
	return Advertised(advertise, listen)
}

// resolveTimeout bounds the lookup of an advertised name at start. A
// container's or pod's own name may take a moment to appear in DNS, so the
// lookup is retried until then.
const resolveTimeout = 10 * time.Second

// GossipIP is the address memberlist announces for a node advertising
// advertise and bound to bindHost. memberlist carries IP addresses only,
// so an advertised name is resolved (once, at start; an IPv4 address is
// preferred). Without an advertised host it is the bound host.
func GossipIP(advertise, bindHost string) (string, error) {
	h := Unbracket(advertise)
	if h == "" {
		return bindHost, nil
	}
	if net.ParseIP(h) != nil {
		return h, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
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

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// IsLoopbackHost reports whether host (of a listen address) is "localhost"
// or a loopback IP address.
func IsLoopbackHost(host string) bool {
	h := Unbracket(host)
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Listener is one listen address of a node, by its name (http, rpc,
// gossip, resp).
type Listener struct{ Name, Addr string }

// FirstWildcard returns the first of ls whose address binds a wildcard
// host; ok is false when none does.
func FirstWildcard(ls []Listener) (l Listener, ok bool) {
	for _, l := range ls {
		host, _, err := net.SplitHostPort(l.Addr)
		if err == nil && IsWildcardHost(host) {
			return l, true
		}
	}
	return Listener{}, false
}

// Unprotected returns the first of ls that binds beyond loopback without
// what protects it, and what it misses: the cluster secret (secret) for
// every port, and tokens or client certificates (clientAuth) for the
// client ports (http, resp). ok is false when none does. A host name other
// than localhost counts as beyond loopback: it may resolve anywhere.
func Unprotected(ls []Listener, secret, clientAuth bool) (l Listener, missing string, ok bool) {
	for _, l := range ls {
		host, _, err := net.SplitHostPort(l.Addr)
		if err != nil || IsLoopbackHost(host) {
			continue
		}
		switch {
		case !secret:
			return l, "--secret (QUORUMKV_SECRET)", true
		case (l.Name == "http" || l.Name == "resp") && !clientAuth:
			return l, "--tokens FILE or --tls-client-ca FILE", true
		}
	}
	return Listener{}, "", false
}
