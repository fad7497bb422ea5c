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
