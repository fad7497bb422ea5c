package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/bench"
	"github.com/quorumkv/quorumkv/internal/plant"
	"github.com/quorumkv/quorumkv/internal/syncio"
	"github.com/quorumkv/quorumkv/node/nodetest"
)

func TestBenchFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"--delay", "exp:2ms"}, "--delay needs --cluster"},
		{[]string{"--faults", "1s:kill:1"}, "--faults needs --cluster"},
		{[]string{"--keep"}, "--keep needs --cluster"},
		{[]string{"--sweep", "3/4/1"}, "r must be in [1, n]"},
		{[]string{"--sweep", "3/1/4"}, "w must be in [1, n]"},
		{[]string{"--sweep", "3/1/1", "--nrw", "3/2/2"}, "exclude each other"},
		{[]string{"--cluster", "dev:3", "--addr", "127.0.0.1:1"}, "exclude each other"},
		{[]string{"--cluster", "dev:0"}, "want dev:N"},
		{[]string{"--cluster", "prod:3"}, "want dev:N"},
		{[]string{"--cluster", "dev:2", "--nrw", "3/2/2"}, "N=3 but the cluster has 2 node(s)"},
		{[]string{"--cluster", "dev:3", "--faults", "1s:kill:3"}, "names node 3"},
		{[]string{"--cluster", "dev:3", "--faults", "1s:explode:1"}, "--faults"},
		{[]string{"--cluster", "dev:3", "--delay", "gauss:2ms"}, "--delay"},
		{[]string{"--workload", "z"}, "--workload"},
		{[]string{"--dist", "pareto"}, "--dist"},
		{[]string{"--coord", "nearest"}, "--coord"},
		{[]string{"--deltas", "5ms,1ms"}, "--deltas"},
		{[]string{"--theta", "1.5"}, "theta"},
		{[]string{"--duration", "0"}, "set a duration or an op count"},
		{[]string{"--concurrency", "0"}, "concurrency"},
		{[]string{"extra"}, "no arguments"},
		{[]string{"--nope"}, "not defined"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := runCmd(t, nil, "", append([]string{"bench"}, tc.args...)...)
			if code != exitBadInput || !strings.Contains(errOut, tc.want) || out != "" {
				t.Fatalf("exit %d (want %d), stdout %q, stderr:\n%s", code, exitBadInput, out, errOut)
			}
		})
	}
	// firsthour (issue 19): help asked for goes to stdout.
	code, helpOut, _ := runCmd(t, nil, "", "bench", "-h")
	if code != exitOK || !strings.Contains(helpOut, "--sweep") || !strings.Contains(helpOut, "dev:N") {
		t.Fatalf("bench -h: exit %d\n%s", code, helpOut)
	}
}

func benchCluster(t *testing.T) string {
	t.Helper()
	_, addrs := aliveCluster(t)
	return strings.Join(addrs, ",")
}

// TestBenchAgainstAddrs runs a small sweep against in-process nodes and
// checks every output: the table, the JSON, the HTML and the memory log.
func TestBenchAgainstAddrs(t *testing.T) {
	addrs := benchCluster(t)
	dir := t.TempDir()
	js, page, rss := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.html"), filepath.Join(dir, "rss.log")
	code, out, errOut := runCmd(t, map[string]string{"QUORUMKV_ADDR": addrs}, "", "bench",
		"--sweep", "3/1/1,3/2/2", "--ops", "300", "--keys", "20", "--concurrency", "4", "--settle", "0",
		"--workload", "f", "--coord", "random", "--json", js, "--html", page, "--rss-log", rss, "--title", "unit")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{"unit\n", "setting", "3/1/1", "3/2/2", "stale reads", "lost writes", "rmw p99"} {
		if !strings.Contains(out, want) {
			t.Fatalf("table lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "3/2/2 ") || !strings.Contains(errOut, "ops/s") {
		t.Fatalf("no progress lines on stderr:\n%s", errOut)
	}
	rep, err := bench.ReadJSONFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Title != "unit" || len(rep.Results) != 2 {
		t.Fatalf("report: title %q, %d results", rep.Title, len(rep.Results))
	}
	for _, r := range rep.Results {
		if r.Ops != 300 || r.Errors != 0 || !r.Consistency.LostChecked || r.Consistency.LostWrites != 0 || r.RMW.Count == 0 {
			t.Errorf("%s: ops %d errors %d %v lost %d (checked %v) rmw %d", r.Quorum, r.Ops, r.Errors, r.ErrorsByKind,
				r.Consistency.LostWrites, r.Consistency.LostChecked, r.RMW.Count)
		}
		if r.Params.Coordinators != bench.CoordRandom || r.Params.Workload != bench.WorkloadF {
			t.Errorf("%s: params %+v", r.Quorum, r.Params)
		}
	}
	if b, err := os.ReadFile(page); err != nil || !bytes.Contains(b, []byte("<svg")) {
		t.Fatalf("html: %v", err)
	}
	b, err := os.ReadFile(rss)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) < 3 || !strings.HasPrefix(lines[0], "# elapsed_s vmrss_kib") {
		t.Fatalf("rss log:\n%s", b)
	}
	if !strings.Contains(errOut, "memory: VmRSS first") {
		t.Fatalf("no memory summary:\n%s", errOut)
	}
}

// TestBenchCatchesPlantedMergeBug re-proves the bench's detector for the
// planted merge bug (a replica keeps only the newest sibling, clocks still
// joined): acknowledged writes are lost, the report says so and the
// command exits 5. The same run without the bug is clean. Before the
// oracle the bench printed "lost writes 0" for this bug.
func TestBenchCatchesPlantedMergeBug(t *testing.T) {
	for _, planted := range []bool{false, true} {
		t.Run(fmt.Sprintf("planted=%v", planted), func(t *testing.T) {
			addrs := benchCluster(t)
			if planted {
				defer plant.Plant(plant.MergeKeepsNewest)()
			}
			js := filepath.Join(t.TempDir(), "r.json")
			code, out, errOut := runCmd(t, map[string]string{"QUORUMKV_ADDR": addrs}, "", "bench",
				"--sweep", "3/1/1,3/2/2", "--ops", "3000", "--keys", "10", "--concurrency", "8", "--settle", "0", "--json", js)
			rep, err := bench.ReadJSONFile(js)
			if err != nil {
				t.Fatalf("exit %d, no report: %v\n%s", code, err, errOut)
			}
			var lost, resurrected, siblings int64
			for _, r := range rep.Results {
				lost += r.Consistency.LostWrites
				resurrected += r.Consistency.ResurrectedWrites
				siblings += int64(r.Consistency.Siblings.Max)
				for _, l := range r.Consistency.Lost {
					if l.ID == 0 || l.Key == "" {
						t.Errorf("lost write listed without its id or key: %+v", l)
					}
				}
			}
			t.Logf("exit %d, lost %d, resurrected %d", code, lost, resurrected)
			if !planted {
				if code != exitOK || lost != 0 || resurrected != 0 || siblings < 2*2 {
					t.Fatalf("without the bug: exit %d, lost %d, resurrected %d, max siblings %d (the load must make concurrent writes)\n%s%s",
						code, lost, resurrected, siblings, out, errOut)
				}
				return
			}
			if code != exitViolation || lost == 0 {
				t.Fatalf("with the bug: exit %d (want %d), lost %d (want > 0)\nstdout:\n%s\nstderr:\n%s", code, exitViolation, lost, out, errOut)
			}
			if !strings.Contains(out, "CONSISTENCY VIOLATED") || !strings.Contains(errOut, "acknowledged write(s) lost") {
				t.Fatalf("the violation is not reported:\nstdout:\n%s\nstderr:\n%s", out, errOut)
			}
		})
	}
}

// TestBenchInterrupted: the first signal stops the run, and what was
// measured is still printed.
func TestBenchInterrupted(t *testing.T) {
	addrs := benchCluster(t)
	sigs := make(chan os.Signal, 2)
	out, errb := &syncio.Buffer{}, &syncio.Buffer{}
	e := &env{stdin: strings.NewReader(""), stdout: out, stderr: errb, ctx: t.Context(), sigs: sigs,
		getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() {
		done <- run(e, []string{"bench", "--addr", addrs, "--nrw", "3/2/2", "--duration", "1m", "--keys", "20",
			"--concurrency", "2", "--progress", "50ms"})
	}()
	nodetest.WaitFor(t, 20*time.Second, "a progress line of the workload", func() bool {
		return strings.Contains(errb.String(), "3/2/2  ")
	})
	sigs <- os.Interrupt
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit %d after interrupt\n%s", code, errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("bench did not stop within 20s of the signal")
	}
	if !strings.Contains(errb.String(), "interrupted; results so far") || !strings.Contains(out.String(), "3/2/2") ||
		!strings.Contains(out.String(), "canceled before the end") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", out.String(), errb.String())
	}
}

func TestBenchRacingCreates(t *testing.T) {
	addrs := benchCluster(t)
	code, out, errOut := runCmd(t, map[string]string{"QUORUMKV_ADDR": addrs}, "", "bench",
		"--workload", "creates", "--sweep", "3/1/1,3/2/2", "--keys", "40", "--racers", "3")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{"RACING CREATES", "3/1/1", "3/2/2", "several won"} {
		if !strings.Contains(out, want) {
			t.Fatalf("table lacks %q:\n%s", want, out)
		}
	}
	if code, _, errOut = runCmd(t, map[string]string{"QUORUMKV_ADDR": addrs}, "", "bench", "--racers", "3"); code != exitBadInput || !strings.Contains(errOut, "--racers") {
		t.Fatalf("--racers without creates: %d %s", code, errOut)
	}
	if code, _, _ = runCmd(t, map[string]string{"QUORUMKV_ADDR": addrs}, "", "bench", "--workload", "creates", "--racers", "1"); code != exitBadInput {
		t.Fatalf("--racers 1: %d", code)
	}
}
