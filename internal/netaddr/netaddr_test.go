package netaddr

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

func TestUnprotected(t *testing.T) {
	ls := []Listener{{"gossip", "127.0.0.1:7946"}, {"http", "localhost:8080"}, {"resp", "[::1]:6379"}}
	if l, m, ok := Unprotected(ls, false, false); ok {
		t.Fatalf("loopback only: %v %q", l, m)
	}
	ls = append(ls, Listener{"rpc", "10.0.0.5:7000"})
	if l, m, ok := Unprotected(ls, false, true); !ok || l.Name != "rpc" || !strings.Contains(m, "--secret") {
		t.Fatalf("rpc beyond loopback without the secret: %v %q %v", l, m, ok)
	}
	if l, m, ok := Unprotected(ls, true, false); ok {
		t.Fatalf("rpc with the secret needs no client auth: %v %q", l, m)
	}
	ls = append(ls, Listener{"http", "n1:8080"})
	if l, m, ok := Unprotected(ls, true, false); !ok || l.Addr != "n1:8080" || !strings.Contains(m, "--tokens") {
		t.Fatalf("http by name without client auth: %v %q %v", l, m, ok)
	}
	if _, _, ok := Unprotected(ls, true, true); ok {
		t.Fatal("secret and client auth: still unprotected")
	}
}

func TestFirstWildcard(t *testing.T) {
	if l, ok := FirstWildcard([]Listener{{"http", "127.0.0.1:1"}, {"rpc", ":2"}, {"gossip", "0.0.0.0:3"}}); !ok || l.Name != "rpc" {
		t.Fatalf("got %v %v, want rpc", l, ok)
	}
	if l, ok := FirstWildcard([]Listener{{"http", "n1:1"}, {"rpc", "bad"}}); ok {
		t.Fatalf("got %v, want none", l)
	}
}
