package node

import (
	"strings"
	"testing"
)

func TestIsWildcardHost(t *testing.T) {
	for _, tc := range []struct {
		host string
		want bool
	}{
		{"", true}, {"0.0.0.0", true}, {"::", true}, {"[::]", true}, {"0:0:0:0:0:0:0:0", true},
		{"127.0.0.1", false}, {"::1", false}, {"[::1]", false}, {"n1", false}, {"10.0.0.5", false},
	} {
		if got := IsWildcardHost(tc.host); got != tc.want {
			t.Errorf("IsWildcardHost(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
}

func TestValidateAdvertiseHost(t *testing.T) {
	for _, tc := range []struct {
		host, err string // err: a substring of the error, "" for none
	}{
		{"n1", ""},
		{"quorumkv-0.quorumkv-peers.default.svc.cluster.local", ""},
		{"deploy_n1_1", ""},
		{"10.1.2.3", ""},
		{"fd00::5", ""},
		{"[fd00::5]", ""},
		{"", "empty"},
		{"0.0.0.0", "wildcard"},
		{"::", "wildcard"},
		{"[::]", "wildcard"},
		{"n1:7946", "without a port"},
		{"10.1.2.3:80", "without a port"},
		{"-n1", "want an IP address or a host name"},
		{"n1.", "want an IP address or a host name"},
		{"a..b", "want an IP address or a host name"},
		{"n 1", "want an IP address or a host name"},
		{"http://n1", "want an IP address or a host name"},
		{strings.Repeat("a", 254), "at most 253"},
	} {
		err := ValidateAdvertiseHost(tc.host)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("ValidateAdvertiseHost(%q) = %v, want nil", tc.host, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ValidateAdvertiseHost(%q) = %v, want an error containing %q", tc.host, err, tc.err)
		}
	}
}

// A listener bound to a wildcard address needs an advertised host, and the
// error names the listener; an advertised host replaces the host of every
// published address and keeps its port.
func TestConfigAdvertise(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.NodeID = "n1"
		return c
	}
	c := base()
	if err := c.Validate(); err != nil {
		t.Fatalf("loopback defaults: %v", err)
	}
	for _, tc := range []struct {
		name string
		set  func(*Config)
		want string
	}{
		{"http", func(c *Config) { c.HTTPAddr = "0.0.0.0:8080" }, `the http listener binds "0.0.0.0:8080"`},
		{"rpc", func(c *Config) { c.RPCAddr = "[::]:7946" }, `the rpc listener binds "[::]:7946"`},
		{"gossip", func(c *Config) { c.GossipAddr = ":7947" }, `the gossip listener binds ":7947"`},
		{"resp", func(c *Config) { c.RESPAddr = "0.0.0.0:6379" }, `the resp listener binds "0.0.0.0:6379"`},
	} {
		c := base()
		tc.set(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "advertise address required") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v, want advertise required naming %s", tc.name, err, tc.want)
		}
		c.Advertise = "n1"
		if err := c.Validate(); err != nil {
			t.Errorf("%s with Advertise: %v", tc.name, err)
		}
		c.Advertise = "0.0.0.0"
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "wildcard") {
			t.Errorf("%s with a wildcard Advertise: %v, want a wildcard error", tc.name, err)
		}
	}

	c = base()
	c.Advertise = "[fd00::5]"
	for bound, want := range map[string]string{
		"0.0.0.0:8080":   "[fd00::5]:8080",
		"[::]:7946":      "[fd00::5]:7946",
		"127.0.0.1:6379": "[fd00::5]:6379",
		"n1":             "n1", // an in-memory transport's address
		"":               "",
	} {
		if got := c.advertised(bound); got != want {
			t.Errorf("advertised(%q) = %q, want %q", bound, got, want)
		}
	}
	c.Advertise = ""
	if got := c.advertised("0.0.0.0:8080"); got != "0.0.0.0:8080" {
		t.Errorf("advertised without Advertise = %q, want the bound address", got)
	}
	c.Advertise = "n1"
	for listen, want := range map[string]string{"0.0.0.0:7946": "n1:7946", "0.0.0.0:0": "", "bad": ""} {
		if got := c.advertisedBeforeListen(listen); got != want {
			t.Errorf("advertisedBeforeListen(%q) = %q, want %q", listen, got, want)
		}
	}
}

func TestGossipAdvertiseIP(t *testing.T) {
	c := DefaultConfig()
	if got, err := gossipAdvertiseIP(c, "127.0.0.1"); err != nil || got != "127.0.0.1" {
		t.Errorf("without Advertise: %q, %v; want the bind host", got, err)
	}
	c.Advertise = "[::1]"
	if got, err := gossipAdvertiseIP(c, "::"); err != nil || got != "::1" {
		t.Errorf("IPv6 literal: %q, %v", got, err)
	}
	c.Advertise = "localhost" // from /etc/hosts: no DNS traffic
	if got, err := gossipAdvertiseIP(c, "0.0.0.0"); err != nil || got != "127.0.0.1" {
		t.Errorf("localhost: %q, %v; want 127.0.0.1 (IPv4 preferred)", got, err)
	}
}

// An empty HTTPAddr opens no client port (a cluster in a synctest bubble);
// the RESP port, served next to it, then has nothing to be served with.
func TestConfigWithoutHTTP(t *testing.T) {
	c := DefaultConfig()
	c.NodeID = "n1"
	c.HTTPAddr = ""
	if err := c.Validate(); err != nil {
		t.Fatalf("no HTTP port: %v", err)
	}
	c.RESPAddr = "127.0.0.1:6379"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "http address is empty") {
		t.Fatalf("RESP without HTTP: Validate = %v, want the empty http address named", err)
	}
}
