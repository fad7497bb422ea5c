package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/bench"
)

// runBench runs `quorumkv bench` with args plus --json, within timeout, and
// returns the report, stdout and stderr. It fails the test unless the
// command exits 0.
func runBench(t *testing.T, timeout time.Duration, args ...string) (*bench.Report, string, string) {
	t.Helper()
	tmp := t.TempDir()
	js := filepath.Join(tmp, "report.json")
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"bench", "--json", js}, args...)...)
	// TMPDIR: the cluster's temporary directory lands in the test's, so the
	// test sees that bench removed it.
	cmd.Env = append(cleanEnv(), "TMPDIR="+tmp)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		t.Fatalf("quorumkv bench %q: %v\nstdout:\n%s\nstderr:\n%s", args, err, out.String(), errb.String())
	}
	rep, err := bench.ReadJSONFile(js)
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(tmp)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "quorumkv-dev-") {
			t.Errorf("bench left its cluster directory %s behind", e.Name())
		}
	}
	if !strings.Contains(errb.String(), "cluster stopped (3 node(s) were running)") {
		t.Errorf("bench did not report stopping its cluster:\n%s", errb.String())
	}
	return rep, out.String(), errb.String()
}

// TestBenchSweepWithInjectedDelay is the acceptance run in small:
// one command starts a 3-node cluster with exponentially delayed
// node-to-node messages and sweeps N=3 over partial and strict quorums.
// Expected: no lost write anywhere; no stale read when R+W>N (no faults);
// stale reads when R+W<=N. The last is probabilistic, so it is asserted on
// the sum over the R+W<=N settings, with enough delay (exp:5ms each way)
// and reads through other coordinators (round robin) that one stale read in
// thousands of reads is all it takes.
func TestBenchSweepWithInjectedDelay(t *testing.T) {
	start := time.Now()
	rep, out, _ := runBench(t, 90*time.Second, "--cluster", "dev:3", "--delay", "exp:5ms",
		"--sweep", "3/1/1,3/1/2,3/2/2,3/3/1", "--duration", "3s", "--keys", "200", "--settle", "1s")
	t.Logf("bench took %s; table:\n%s", time.Since(start).Round(time.Second), out)
	if len(rep.Results) != 4 {
		t.Fatalf("%d results, want 4", len(rep.Results))
	}
	var weakStale, weakReads int64
	for _, r := range rep.Results {
		c := r.Consistency
		if r.Params.Delay != "exp:5ms" {
			t.Errorf("%s: delay %q not recorded", r.Quorum, r.Params.Delay)
		}
		if r.Read.Count == 0 || r.Write.Count == 0 {
			t.Errorf("%s: %d reads, %d writes", r.Quorum, r.Read.Count, r.Write.Count)
		}
		if !c.LostChecked || c.LostWrites != 0 || c.UnverifiedWrites != 0 {
			t.Errorf("%s: lost writes %d, unverified %d, checked %v", r.Quorum, c.LostWrites, c.UnverifiedWrites, c.LostChecked)
		}
		if r.Quorum.Strict() {
			if c.StaleReads != 0 {
				t.Errorf("%s (R+W>N): %d stale reads, want 0", r.Quorum, c.StaleReads)
			}
		} else {
			weakStale += c.StaleReads
			weakReads += r.Read.Count
		}
	}
	if weakStale == 0 {
		t.Errorf("R+W<=N settings: no stale read in %d reads with exp:5ms injected delay", weakReads)
	}
	if !strings.Contains(out, "t-visibility") || !strings.Contains(out, "3/3/1") {
		t.Errorf("table incomplete:\n%s", out)
	}
}

// TestBenchFaultSchedule kills a node mid-run and restarts it: both steps
// are applied and recorded, every setting's writes survive (R=N check after
// the restart and hinted handoff), and the run finishes.
func TestBenchFaultSchedule(t *testing.T) {
	rep, out, errOut := runBench(t, 90*time.Second, "--cluster", "dev:3", "--nrw", "3/2/2",
		"--faults", "1s:kill:2,3s:restart:2", "--duration", "5s", "--keys", "200", "--settle", "2s", "--timeout", "2s")
	r := rep.Results[0]
	if len(r.Faults) != 2 || r.Faults[0].Action != bench.FaultKill || r.Faults[1].Action != bench.FaultRestart {
		t.Fatalf("fault events %+v\n%s", r.Faults, errOut)
	}
	for _, f := range r.Faults {
		if f.Err != "" || f.Node != 2 || f.Restore {
			t.Errorf("fault event %+v", f)
		}
	}
	if c := r.Consistency; !c.LostChecked || c.LostWrites != 0 {
		t.Errorf("lost writes %d (checked %v) through a kill and restart\n%s", c.LostWrites, c.LostChecked, out)
	}
	if r.Ops == 0 {
		t.Errorf("no operation succeeded:\n%s", out)
	}
	if !strings.Contains(out, "kill    node 2") || !strings.Contains(out, "restart node 2") {
		t.Errorf("faults missing from the text report:\n%s", out)
	}
}

// TestBenchBadFlags: usage errors exit 2 before anything starts.
func TestBenchBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--delay", "exp:2ms"},
		{"bench", "--cluster", "dev:3", "--sweep", "3/4/1"},
	} {
		code, out, errOut := cli(t, "", args...)
		if code != 2 || out != "" || !strings.Contains(errOut, "quorumkv: bench:") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}
