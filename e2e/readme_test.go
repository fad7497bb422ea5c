package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// The README's tour is a test: TestREADME starts `quorumkv dev` as the
// tour does, then runs every ```console block of README.md's "A short
// tour" section, in order, in one bash session (so CTX=$(...) carries on),
// and compares each command's output with the lines the README shows
// under it.
//
// Block format (the README says it too):
//   - `$ CMD` is a command, run with bash in a directory holding the
//     binary under test as ./quorumkv, with QUORUMKV_ADDR exported as
//     dev printed it. A line ending in \ continues on the next. Its stdout
//     and stderr, together, must match the lines under it. It must exit 0
//     (write `; echo "exit $?"` to show a failure). A comment starting
//     with "# repeat until" makes the test repeat the command until its
//     output matches (30s at most), for what converges in the background.
//   - `dev> CMD` is typed into dev's standard input; dev's standard error
//     must then show the lines under it (within 60s).
//   - `$ go run ./cmd/quorumkv dev` (or `quorumkv dev`) is not run: the
//     lines under it must match what the test's own dev printed.
//   - Expected and actual lines are normalised before they are compared
//     (normaliseLine): addresses 127.0.0.1:PORT, pids, times, durations in
//     dev's first line, dots' epochs, dot and context tokens, Date and
//     Content-Length headers, and runs of blanks (tabs too) become one
//     space. A line "..." matches any number of lines; "..." inside a line
//     matches any text.
//
// Commands that need a tool missing here (redis-cli) are skipped with a
// note; .ci/run installs it.
func TestREADME(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "awk"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the README tour needs %s, which is not installed", tool)
		}
	}
	steps, err := parseTour("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) < 10 || steps[0].kind != stepDevStart {
		t.Fatalf("README tour: %d steps, the first %+v; want it to start with dev", len(steps), steps[0])
	}

	tmp := t.TempDir()
	d := startDev(t, append(cleanEnv(), "TMPDIR="+tmp), "--nodes", "3")
	addr := regexp.MustCompile(`export QUORUMKV_ADDR=(\S+)`).FindStringSubmatch(d.text)
	if addr == nil {
		t.Fatalf("dev printed no export line:\n%s", d.text)
	}
	work := filepath.Join(tmp, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, filepath.Join(work, "quorumkv")); err != nil {
		t.Fatal(err)
	}
	sh := newShell(t, work, append(cleanEnv(), "QUORUMKV_ADDR="+addr[1]))
	_, redisCLI := exec.LookPath("redis-cli")

	t.Logf("running %d steps of the README tour", len(steps))
	for _, st := range steps {
		where := fmt.Sprintf("README.md:%d: %s", st.line, st.cmd)
		switch st.kind {
		case stepDevStart:
			if ok, diff := matchOutput(st.want, d.text); !ok {
				t.Fatalf("%s: dev's output does not match the README\n%s", where, diff)
			}
		case stepDev:
			before := len(d.errb.String())
			if _, err := io.WriteString(d.console, st.cmd+"\n"); err != nil {
				t.Fatal(err)
			}
			want := append(append([]string{"..."}, st.want...), "...")
			var diff string
			if err := poll(60*time.Second, where, func() bool {
				var ok bool
				ok, diff = matchOutput(want, d.errb.String()[before:])
				return ok
			}); err != nil {
				t.Fatalf("%s: dev's standard error does not show the README's lines: %v\n%s", where, err, diff)
			}
			if m := regexp.MustCompile(`restarted \(pid (\d+)\)`).FindStringSubmatch(d.errb.String()[before:]); m != nil {
				var pid int
				fmt.Sscan(m[1], &pid)
				d.pids = append(d.pids, pid)
			}
		case stepCommand:
			if redisCLI != nil && strings.Contains(st.cmd, "redis-cli") {
				t.Logf("%s: skipped: redis-cli is not installed (apt-get install redis-tools)", where)
				continue
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				out, code := sh.run(st.cmd, 60*time.Second)
				ok, diff := matchOutput(st.want, out)
				if ok && code == 0 {
					break
				}
				if st.repeat && time.Now().Before(deadline) {
					time.Sleep(250 * time.Millisecond)
					continue
				}
				if code != 0 {
					t.Fatalf("%s: exit status %d (a command of the tour must succeed, or show its status with echo)\noutput:\n%s", where, code, out)
				}
				t.Fatalf("%s: the output does not match the README\n%s", where, diff)
			}
		}
	}
}

type stepKind int

const (
	stepCommand  stepKind = iota + 1 // $ CMD
	stepDev                          // dev> CMD
	stepDevStart                     // $ go run ./cmd/quorumkv dev
)

// tourStep is one command of the tour with the lines the README shows
// under it.
type tourStep struct {
	kind   stepKind
	line   int // README line of the command
	cmd    string
	repeat bool // "# repeat until ...": run until the output matches
	want   []string
}

// parseTour reads the console blocks of the "A short tour" section.
func parseTour(path string) ([]tourStep, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		steps             []tourStep
		inTour, inConsole bool
		inFence           bool
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "## "):
			inTour = l == "## A short tour"
			continue
		case strings.HasPrefix(l, "```"):
			if inFence {
				inFence, inConsole = false, false
			} else {
				inFence, inConsole = true, inTour && strings.TrimSpace(l[3:]) == "console"
			}
			continue
		case !inConsole:
			continue
		}
		switch {
		case strings.HasPrefix(l, "$ "):
			cmd := strings.TrimPrefix(l, "$ ")
			start := n
			for strings.HasSuffix(cmd, "\\") && sc.Scan() {
				n++
				cmd = strings.TrimSuffix(cmd, "\\") + " " + strings.TrimSpace(sc.Text())
			}
			kind := stepCommand
			if f := strings.Fields(cmd); len(f) > 0 && (strings.Join(f, " ") == "go run ./cmd/quorumkv dev" || strings.Join(f, " ") == "quorumkv dev") {
				kind = stepDevStart
			}
			_, comment, _ := strings.Cut(cmd, "#")
			steps = append(steps, tourStep{kind: kind, line: start, cmd: cmd,
				repeat: strings.HasPrefix(strings.TrimSpace(comment), "repeat until")})
		case strings.HasPrefix(l, "dev> "):
			steps = append(steps, tourStep{kind: stepDev, line: n, cmd: strings.TrimPrefix(l, "dev> ")})
		case len(steps) == 0:
			return nil, fmt.Errorf("%s:%d: output before any command", path, n)
		default:
			steps[len(steps)-1].want = append(steps[len(steps)-1].want, l)
		}
	}
	return steps, sc.Err()
}

// normalisers make what differs between runs compare equal.
var normalisers = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`), "TIME"},
	{regexp.MustCompile(`^Date: .*`), "Date: DATE"},
	{regexp.MustCompile(`^Content-Length: \d+`), "Content-Length: N"},
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "127.0.0.1:PORT"},
	{regexp.MustCompile(`\bpid \d+`), "pid PID"},
	{regexp.MustCompile(`^(n\d+)\s+\d+\s`), "$1 PID "}, // dev's table
	{regexp.MustCompile(`up and joined in \S+`), "up and joined in DURATION"},
	{regexp.MustCompile(`#\d+:`), "#EPOCH:"},
	{regexp.MustCompile(`[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{22}`), "CONTEXT"},
	{regexp.MustCompile(`"dot": "[A-Za-z0-9_-]*"`), `"dot": "DOT"`},
	{regexp.MustCompile(`^X-Quorumkv-Dot: \S+`), "X-Quorumkv-Dot: DOT"},
	{regexp.MustCompile(`[ \t]+`), " "},
}

func normaliseLine(l string) string {
	l = strings.TrimRight(strings.ReplaceAll(l, "\r", ""), " \t")
	for _, n := range normalisers {
		l = n.re.ReplaceAllString(l, n.with)
	}
	return strings.TrimSpace(l)
}

// matchOutput matches actual output against the README's lines, both
// normalised; on a mismatch it returns both, for the failure message.
func matchOutput(want []string, actual string) (bool, string) {
	w := normaliseLines(want)
	a := normaliseLines(strings.Split(actual, "\n"))
	if matchLines(w, a) {
		return true, ""
	}
	return false, fmt.Sprintf("--- README (normalised):\n%s\n--- got (normalised):\n%s", strings.Join(w, "\n"), strings.Join(a, "\n"))
}

// normaliseLines normalises every line and drops trailing empty ones.
func normaliseLines(ls []string) []string {
	out := make([]string, 0, len(ls))
	for _, l := range ls {
		out = append(out, normaliseLine(l))
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return out
}

// matchLines reports whether a matches the pattern lines w: "..." alone
// matches any run of lines, "..." in a line any text.
func matchLines(w, a []string) bool {
	memo := map[[2]int]bool{}
	var m func(i, j int) bool
	m = func(i, j int) bool {
		k := [2]int{i, j}
		if v, ok := memo[k]; ok {
			return v
		}
		var r bool
		switch {
		case i == len(w):
			r = j == len(a)
		case w[i] == "...":
			r = m(i+1, j) || (j < len(a) && m(i, j+1))
		default:
			r = j < len(a) && globMatch(w[i], a[j]) && m(i+1, j+1)
		}
		memo[k] = r
		return r
	}
	return m(0, 0)
}

// globMatch matches s against p, where "..." in p matches any text.
func globMatch(p, s string) bool {
	parts := strings.Split(p, "...")
	if len(parts) == 1 {
		return p == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, part := range parts[1 : len(parts)-1] {
		i := strings.Index(s, part)
		if i < 0 {
			return false
		}
		s = s[i+len(part):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

// shell is one bash session: commands run in turn, and shell variables
// set by one are seen by the next.
type shell struct {
	t     *testing.T
	cmd   *exec.Cmd
	in    io.WriteCloser
	mu    sync.Mutex
	out   strings.Builder
	seq   int
	ended chan struct{}
}

func newShell(t *testing.T, dir string, env []string) *shell {
	t.Helper()
	s := &shell{t: t, cmd: exec.Command("bash", "--noprofile", "--norc"), ended: make(chan struct{})}
	s.cmd.Dir, s.cmd.Env = dir, env
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = w, w // one stream, as a terminal shows it
	if s.in, err = s.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	go func() {
		defer close(s.ended)
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			s.mu.Lock()
			s.out.Write(buf[:n])
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		s.in.Close()
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		r.Close()
	})
	return s
}

// run runs one command line (stdin from /dev/null) and returns what it
// printed and its exit status; it fails the test after timeout.
func (s *shell) run(cmd string, timeout time.Duration) (string, int) {
	s.t.Helper()
	s.seq++
	marker := fmt.Sprintf("@@QKV-END-%d@@", s.seq)
	s.mu.Lock()
	from := s.out.Len()
	s.mu.Unlock()
	if _, err := fmt.Fprintf(s.in, "{ %s\n} </dev/null; printf '\\n%s %%d\\n' $?\n", cmd, marker); err != nil {
		s.t.Fatalf("shell: %v", err)
	}
	re := regexp.MustCompile(`\n` + marker + ` (\d+)\n`)
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		got := s.out.String()[from:]
		s.mu.Unlock()
		if m := re.FindStringSubmatchIndex(got); m != nil {
			var code int
			fmt.Sscan(got[m[2]:m[3]], &code)
			return got[:m[0]], code
		}
		select {
		case <-s.ended:
			s.t.Fatalf("shell exited running %q; output:\n%s", cmd, got)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%q did not finish within %s; output so far:\n%s", cmd, timeout, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestREADMEMatcher checks the tour's matching rules on their own.
func TestREADMEMatcher(t *testing.T) {
	for _, tc := range []struct {
		want   []string
		actual string
		ok     bool
	}{
		{[]string{"hello"}, "hello", true},
		{[]string{"hello"}, "hello\n", true},
		{[]string{"hello"}, "hallo", false},
		{[]string{"a", "...", "d"}, "a\nb\nc\nd", true},
		{[]string{"a", "...", "d"}, "a\nd", true},
		{[]string{"a", "...", "d"}, "a\nb", false},
		{[]string{"quorumkv: get: ... [node http://127.0.0.1:1]"}, "quorumkv: get: 1 of 3 [node http://127.0.0.1:45937]", true},
		{[]string{"X-Quorumkv-Context: AZGTom4xzwz3EHoup0ZhAQ.fkZICfci4U1L1Bla3f39CQ"}, "X-Quorumkv-Context: AZGTom4xzzzzzzzzzzzzAg.gVdUBq-IGssvl24UOHSDIQ", true},
		{[]string{"1\tdot=n1#93:1\ttime=2026-12-06T02:00:50.861037868Z\tlive"}, "1  dot=n1#4244:1 time=2027-01-01T00:00:00Z live  ", true},
		{[]string{"1 dot=n1#93:1"}, "1 dot=n2#93:1", false},
		{[]string{"n1  29878  127.0.0.1:40631"}, "n1  5  127.0.0.1:1", true},
		{[]string{"exit 3"}, "exit 4", false},
	} {
		if ok, diff := matchOutput(tc.want, tc.actual); ok != tc.ok {
			t.Errorf("matchOutput(%q, %q) = %v, want %v\n%s", tc.want, tc.actual, ok, tc.ok, diff)
		}
	}
}
