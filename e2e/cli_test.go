package e2e

import (
	"strings"
	"testing"
	"time"
)

// Issue 19, items 7 and 8, through the real binary against real agents: a
// paused node first in QUORUMKV_ADDR no longer blocks the CLI for its
// whole timeout (it goes on to the next address); values that look like
// flags, and the keys "." and "..", are written and read back; a negative
// --timeout is refused.
func TestCLIFirstHour(t *testing.T) {
	as := cluster(t, 3)
	env := []string{"QUORUMKV_ADDR=" + as[0].http + "," + as[1].http + "," + as[2].http}
	q := func(args ...string) (int, string, string) {
		t.Helper()
		return cliEnv(t, env, "", args...)
	}
	if code, _, errOut := q("put", "neg", "-5", "--w", "3"); code != 0 {
		t.Fatalf("put neg -5: exit %d %s", code, errOut)
	}
	if code, out, _ := q("get", "neg", "--r", "3"); code != 0 || out != "-5" {
		t.Fatalf("get neg: %d %q, want -5", code, out)
	}
	for _, k := range []string{".", "..", "a//b"} {
		if code, _, errOut := q("put", k, "v"+k, "--w", "3"); code != 0 {
			t.Fatalf("put %q: exit %d %s", k, code, errOut)
		}
	}
	for _, k := range []string{".", "..", "a//b"} {
		if code, out, errOut := q("get", k, "--r", "3"); code != 0 || out != "v"+k {
			t.Fatalf("get %q: exit %d %q %s", k, code, out, errOut)
		}
	}
	if code, _, errOut := q("get", "neg", "--timeout", "-1s"); code != 2 || !strings.Contains(errOut, "cannot be negative") {
		t.Fatalf("--timeout -1s: exit %d %s", code, errOut)
	}

	as[0].pause()
	defer as[0].resume()
	start := time.Now()
	code, out, errOut := q("get", "neg", "--r", "2")
	if code != 0 || out != "-5" {
		t.Fatalf("get with the first address paused: exit %d %q %s", code, out, errOut)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("get with the first address paused took %s (the CLI waited for the paused node)", d)
	}
	start = time.Now()
	if code, _, errOut := q("put", "while-paused", "v", "--w", "2"); code != 0 {
		t.Fatalf("put with the first address paused: exit %d %s", code, errOut)
	}
	t.Logf("a put with the first address paused took %s", time.Since(start).Round(time.Millisecond))
}
