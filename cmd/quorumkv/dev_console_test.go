package main

import (
	"strings"
	"testing"

	"github.com/quorumkv/quorumkv/internal/devcluster"
)

// A cluster that was never started: every command that would act on a
// process must refuse with a clear message, and none may panic.
func unstartedCluster(t *testing.T) *devcluster.Cluster {
	t.Helper()
	cfg := devcluster.DefaultConfig()
	cfg.Exe, cfg.Nodes, cfg.Dir = "/bin/false", 3, t.TempDir()
	c, err := devcluster.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDevCommand(t *testing.T) {
	c := unstartedCluster(t)
	for _, tc := range []struct{ line, want string }{
		{"", ""},
		{"   ", ""},
		{"help", "restart NODE"},
		{"HELP", "restart NODE"},
		{"nodes", "n3  down"},
		{"nodes n1", "takes no arguments"},
		{"frob n1", `unknown command "frob"`},
		{strings.Repeat("x", 100), "..."},
		{"kill", "takes one node"},
		{"kill n1 n2", "takes one node"},
		{"kill n4", `no node "n4": the nodes are n1 to n3`},
		{"kill n0", "no node"},
		{"kill -1", "no node"},
		{"kill nn1", "no node"},
		{"kill 99999999999999999999", "no node"},
		{"kill n2", "not running"},
		{"resume 2", "not paused"},
		{"pause N3", "not running"},
	} {
		got := devCommand(c, tc.line)
		if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
			t.Errorf("devCommand(%q) = %q, want it to contain %q", tc.line, got, tc.want)
		}
	}
}

func TestDevConsoleRefusesLongLine(t *testing.T) {
	c := unstartedCluster(t)
	var out strings.Builder
	devConsole(strings.NewReader("help\n"+strings.Repeat("x", 3*maxConsoleLine)+"\nhelp"), &out, c)
	if n := strings.Count(out.String(), "commands (type here"); n != 2 {
		t.Errorf("help answered %d times, want 2 (before and after the overlong line):\n%s", n, out.String())
	}
	if n := strings.Count(out.String(), "was ignored"); n != 1 {
		t.Errorf("%d refusals of the overlong line, want 1:\n%s", n, out.String())
	}
	out.Reset()
	devConsole(nil, &out, c) // no input: returns at once
	devConsole(strings.NewReader(""), &out, c)
	if out.Len() != 0 {
		t.Errorf("empty input printed %q", out.String())
	}
}
