package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quorumkv/quorumkv/bench"
	"github.com/quorumkv/quorumkv/bench/httpclient"
	"github.com/quorumkv/quorumkv/client"
	"github.com/quorumkv/quorumkv/internal/devcluster"
)

const benchDescription = `
Drives a workload against a cluster and measures, per N/R/W setting, what
it costs in latency (HdrHistogram percentiles, throughput, errors by kind)
and what it buys in consistency (stale reads, k-staleness, t-visibility,
siblings per read). Every value written carries its write's id; an oracle
that trusts only what the client wrote, saw and was told (never the
store's causal contexts) judges each read and, after a final read of every
key at R=N, counts lost writes (acknowledged, absent, and superseded by no
write whose context showed them), resurrected writes (superseded values
returned again) and indeterminate writes (reported failed, yet seen
later). --sweep runs the same workload once per setting and prints one
side-by-side table on stdout; progress goes to stderr.

Target: --addr (existing nodes; coordinators are chosen among them per
request) or --cluster dev:N (a local cluster of agent processes of this
binary, stopped at the end). Only with --cluster: --delay injects latency on
every node-to-node message (exp:2ms, fixed:1ms, fixed:1ms+jitter:500us) and
--faults runs a fault schedule (10s:kill:1,20s:restart:1,30s:pause:2,
35s:resume:2; node indexes are 0-based, times from each run's start).

Ctrl-C stops the run and still prints what was measured (a second one
kills the cluster's agents at once). Exit 0 when every setting ran (or the
run was interrupted), 1 on a failure, 2 on bad flags, 5 when a setting
broke a promise every setting makes, with or without faults: an
acknowledged write lost or a superseded one resurrected (the report says
which, under CONSISTENCY VIOLATED).`

// benchFlags are the parsed flags of one bench invocation.
type benchFlags struct {
	addr, cluster, dir   string
	keep                 bool
	workload, dist       string
	theta                float64
	keys, valueSize      int
	concurrency          int
	duration             time.Duration
	ops                  int64
	rate                 float64
	coord                string
	sweep, nrw, deltas   string
	delay, faults        string
	jsonOut, htmlOut     string
	title                string
	seed                 uint64
	timeout, settle      time.Duration
	history              int
	blind, noLoad, noChk bool
	progress             time.Duration
	rssLog               string
	rssEvery             time.Duration
	racers               int
}

func runBench(e *env, args []string) int {
	fs := newFlagSet(e, "bench", "[--addr A,B,C | --cluster dev:3] [--sweep 3/1/1,3/2/2 | --nrw 3/2/2] [flags]", benchDescription)
	var f benchFlags
	def := bench.DefaultConfig()
	fs.StringVar(&f.addr, "addr", "", "node HTTP `addresses`, comma-separated (default $QUORUMKV_ADDR, else 127.0.0.1:8080, unless --cluster)")
	fs.StringVar(&f.cluster, "cluster", "", "start a local cluster: dev:N (N agents of this binary on 127.0.0.1)")
	fs.StringVar(&f.dir, "dir", "", "with --cluster: directory for the agents' data and logs (kept; default: a temporary one)")
	fs.BoolVar(&f.keep, "keep", false, "with --cluster: keep the temporary directory")
	fs.StringVar(&f.workload, "workload", "a", "a, b, c, d, f (YCSB core), write (write only), or creates (racing create-only writes, see --racers)")
	fs.IntVar(&f.racers, "racers", 2, "with --workload creates: create-only writes racing for each key, each through another node")
	fs.StringVar(&f.dist, "dist", "", "key distribution: uniform, zipfian or latest (default: latest for d, zipfian otherwise)")
	fs.Float64Var(&f.theta, "theta", bench.DefaultTheta, "zipfian skew, in [0, 1)")
	fs.IntVar(&f.keys, "keys", def.Keys, "number of distinct keys")
	fs.IntVar(&f.valueSize, "value-size", def.ValueSize, fmt.Sprintf("value size in bytes, at least %d (each value starts with its write's id)", bench.MinValueSize))
	fs.IntVar(&f.concurrency, "concurrency", def.Concurrency, "workers (closed loop: clients; open loop: most requests in flight)")
	fs.DurationVar(&f.duration, "duration", def.Duration, "length of each run (0: until --ops)")
	fs.Int64Var(&f.ops, "ops", 0, "stop each run after this many operations (alone, it replaces --duration)")
	fs.Float64Var(&f.rate, "rate", 0, "open loop at this many operations per second, latency from the intended send time (0: closed loop)")
	fs.StringVar(&f.coord, "coord", "roundrobin", "coordinator per request: roundrobin or random")
	fs.StringVar(&f.sweep, "sweep", "", "run once per N/R/W setting, e.g. 3/1/1,3/1/2,3/2/2")
	fs.StringVar(&f.nrw, "nrw", "", "the one N/R/W setting to run (default 3/2/2; excludes --sweep)")
	fs.StringVar(&f.deltas, "deltas", "", "t-visibility buckets, increasing, e.g. 0,1ms,5ms,20ms (default 0,1ms,2ms,5ms,...,1s)")
	fs.StringVar(&f.delay, "delay", "", "with --cluster: delay per node-to-node message, e.g. exp:2ms or fixed:1ms+jitter:500us")
	fs.StringVar(&f.faults, "faults", "", "with --cluster: fault schedule at:action:node,..., e.g. 10s:kill:1,20s:restart:1")
	fs.StringVar(&f.jsonOut, "json", "", "also write the report as JSON to `file`")
	fs.StringVar(&f.htmlOut, "html", "", "also write a self-contained HTML report with charts to `file`")
	fs.StringVar(&f.title, "title", "", "report title (default: describes the target)")
	fs.Uint64Var(&f.seed, "seed", def.Seed, "seed of keys, operations, coordinators and values")
	fs.DurationVar(&f.timeout, "timeout", def.Timeout, "per-request timeout")
	fs.DurationVar(&f.settle, "settle", def.Settle, "wait after each run before the lost-write check (hinted handoff)")
	fs.IntVar(&f.history, "history", bench.DefaultHistory, "writes remembered per key by the consistency checker")
	fs.BoolVar(&f.blind, "blind", false, "send updates without a context (YCSB semantics; siblings pile up)")
	fs.BoolVar(&f.noLoad, "no-load", false, "skip the load phase that writes every key once")
	fs.BoolVar(&f.noChk, "no-lost-check", false, "skip the final lost-write check at R=N")
	fs.DurationVar(&f.progress, "progress", time.Second, "interval of the progress line")
	fs.StringVar(&f.rssLog, "rss-log", "", "sample this process's memory (VmRSS, Go heap) into `file` every --rss-every")
	fs.DurationVar(&f.rssEvery, "rss-every", 10*time.Second, "interval of --rss-log samples")
	var sec clientFlags // --token, --cacert for --addr
	sec.registerSecurity(e, fs)
	if code, ok := parseFlagsOnly(e, fs, args); !ok {
		return code
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	plan, err := f.plan(e, set)
	if err != nil {
		return fail(e, exitBadInput, "bench: %v", err)
	}
	plan.security = []client.Option{client.WithToken(sec.token), client.WithCAFile(sec.cacert)}
	return plan.run(e)
}

// benchPlan is a validated invocation.
type benchPlan struct {
	f        benchFlags
	cfg      bench.Config
	quorums  []bench.Quorum
	addrs    []string        // with --addr
	security []client.Option // --token, --cacert
	nodes    int             // with --cluster
	delay    bench.Delay
	terminal bool
	// creates is set for --workload creates: racing create-only writes
	// (bench.RaceCreates) instead of a YCSB workload.
	creates *bench.CreatesConfig
}

// plan checks the flags and builds the run's configuration. Every error
// is the user's (exit 2).
func (f benchFlags) plan(e *env, set map[string]bool) (*benchPlan, error) {
	p := &benchPlan{f: f}
	if f.cluster != "" {
		if set["addr"] {
			return nil, errors.New("--addr and --cluster exclude each other")
		}
		n, ok := strings.CutPrefix(f.cluster, "dev:")
		nodes, err := strconv.Atoi(n)
		if !ok || err != nil || nodes < 1 || nodes > devcluster.MaxNodes {
			return nil, fmt.Errorf("--cluster %q: want dev:N with N from 1 to %d", f.cluster, devcluster.MaxNodes)
		}
		p.nodes = nodes
	} else {
		for _, name := range []string{"delay", "faults", "dir", "keep"} {
			if set[name] {
				return nil, fmt.Errorf("--%s needs --cluster (it acts on a cluster the bench starts)", name)
			}
		}
		addr := f.addr
		if addr == "" {
			addr = e.getenv("QUORUMKV_ADDR")
		}
		if addr == "" {
			addr = defaultAddr
		}
		for _, a := range strings.Split(addr, ",") {
			if a = strings.TrimSpace(a); a != "" {
				p.addrs = append(p.addrs, a)
			}
		}
		if len(p.addrs) == 0 {
			return nil, errors.New("--addr: no address")
		}
	}

	cfg := bench.DefaultConfig()
	var err error
	if f.workload == "creates" {
		cc := bench.DefaultCreatesConfig()
		cc.Keys, cc.Racers, cc.Concurrency, cc.Timeout = f.keys, f.racers, f.concurrency, f.timeout
		if !set["keys"] {
			cc.Keys = bench.DefaultCreatesConfig().Keys
		}
		if !set["concurrency"] {
			cc.Concurrency = bench.DefaultCreatesConfig().Concurrency
		}
		// Each run its own keys: a key created by an earlier run refuses every racer.
		cc.KeyPrefix += strconv.FormatInt(time.Now().UnixNano(), 36) + "/"
		if err := cc.Validate(); err != nil {
			return nil, err
		}
		p.creates = &cc
	} else if set["racers"] {
		return nil, errors.New("--racers applies to --workload creates only")
	} else if cfg.Workload, err = bench.ParseWorkload(f.workload); err != nil {
		return nil, fmt.Errorf("--workload: %w", err)
	}
	if f.dist != "" {
		if cfg.Distribution, err = bench.ParseDistribution(f.dist); err != nil {
			return nil, fmt.Errorf("--dist: %w", err)
		}
	}
	if cfg.Coordinators, err = bench.ParseCoordPolicy(f.coord); err != nil {
		return nil, fmt.Errorf("--coord: %w", err)
	}
	cfg.Theta, cfg.Keys, cfg.ValueSize, cfg.Concurrency = f.theta, f.keys, f.valueSize, f.concurrency
	cfg.Duration, cfg.Ops, cfg.Rate = f.duration, f.ops, f.rate
	if set["ops"] && !set["duration"] {
		cfg.Duration = 0 // --ops alone: as many operations as asked, however long
	}
	cfg.Seed, cfg.Timeout, cfg.Settle, cfg.History = f.seed, f.timeout, f.settle, f.history
	cfg.BlindUpdates, cfg.Load, cfg.CheckLost = f.blind, !f.noLoad, !f.noChk
	cfg.ErrorKind = httpclient.ErrorKind
	cfg.ProgressInterval = f.progress
	if f.progress <= 0 {
		return nil, fmt.Errorf("--progress %s: must be positive", f.progress)
	}
	if f.deltas != "" {
		if cfg.Deltas, err = bench.ParseDeltas(f.deltas); err != nil {
			return nil, fmt.Errorf("--deltas: %w", err)
		}
	}
	if p.delay, err = bench.ParseDelay(f.delay); err != nil {
		return nil, fmt.Errorf("--delay: %w", err)
	}
	cfg.Delay = p.delay
	if cfg.Schedule, err = bench.ParseSchedule(f.faults); err != nil {
		return nil, fmt.Errorf("--faults: %w", err)
	}
	for _, st := range cfg.Schedule {
		if st.Node >= p.nodes {
			return nil, fmt.Errorf("--faults: step %s:%s:%d names node %d, the cluster has nodes 0 to %d", st.At, st.Action, st.Node, st.Node, p.nodes-1)
		}
	}
	if len(cfg.Schedule) > 0 {
		cfg.Faults = noFaults{} // replaced by the cluster in run; lets Validate pass
	}

	switch {
	case f.sweep != "" && f.nrw != "":
		return nil, errors.New("--sweep and --nrw exclude each other")
	case f.sweep != "":
		if p.quorums, err = bench.ParseQuorums(f.sweep); err != nil {
			return nil, fmt.Errorf("--sweep: %w", err)
		}
	default:
		q := cfg.Quorum
		if f.nrw != "" {
			if q, err = bench.ParseQuorum(f.nrw); err != nil {
				return nil, fmt.Errorf("--nrw: %w", err)
			}
		}
		p.quorums = []bench.Quorum{q}
	}
	for _, q := range p.quorums {
		if p.nodes > 0 && q.N > p.nodes {
			return nil, fmt.Errorf("setting %s: N=%d but the cluster has %d node(s)", q, q.N, p.nodes)
		}
	}
	cfg.Quorum = p.quorums[0]
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if f.rssLog != "" && f.rssEvery <= 0 {
		return nil, fmt.Errorf("--rss-every %s: must be positive", f.rssEvery)
	}
	if fl, ok := e.stderr.(*os.File); ok {
		if fi, err := fl.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.terminal = true
		}
	}
	p.cfg = cfg
	return p, nil
}

// noFaults stands in for the cluster during validation only.
type noFaults struct{}

func (noFaults) Kill(int) error    { return errors.New("no cluster") }
func (noFaults) Restart(int) error { return errors.New("no cluster") }
func (noFaults) Pause(int) error   { return errors.New("no cluster") }
func (noFaults) Resume(int) error  { return errors.New("no cluster") }

func (p *benchPlan) run(e *env) int {
	sigs := watchSignals(e, "quorumkv bench")
	defer sigs.close()
	cfg := p.cfg
	cfg.Progress, cfg.Terminal = e.stderr, p.terminal
	title := p.f.title
	addrs := p.addrs

	if p.nodes > 0 {
		path, temp, err := devcluster.MakeDir(p.f.dir)
		if err != nil {
			return fail(e, exitInternal, "bench: cluster directory: %v", err)
		}
		defer func() {
			if temp && !p.f.keep {
				if err := os.RemoveAll(path); err != nil {
					fmt.Fprintf(e.stderr, "quorumkv bench: remove %s: %v\n", path, err)
				}
			} else {
				fmt.Fprintf(e.stderr, "quorumkv bench: cluster data and logs kept in %s\n", path)
			}
		}()
		exe, err := os.Executable()
		if err != nil {
			return fail(e, exitInternal, "bench: find this binary: %v", err)
		}
		dc := devcluster.DefaultConfig()
		dc.Exe, dc.Nodes, dc.Dir = exe, p.nodes, path
		dc.Log, dc.Prefix = e.stderr, "quorumkv bench: "
		dc.Env = append(dc.Env, devcluster.CPUShareEnv(p.nodes, os.Environ())...)
		if p.delay.Kind != 0 {
			dc.AgentArgs = []string{"--inject-delay", p.delay.String()}
		}
		c, err := devcluster.New(dc)
		if err != nil {
			return fail(e, exitInternal, "bench: %v", err)
		}
		defer func() {
			n := c.Stop(sigs.hard)
			fmt.Fprintf(e.stderr, "quorumkv bench: cluster stopped (%d node(s) were running)\n", n)
		}()
		desc := fmt.Sprintf("a local cluster of %d node(s)", p.nodes)
		if p.delay.Kind != 0 {
			desc += ", injected delay " + p.delay.String() + " per node-to-node message"
		}
		fmt.Fprintf(e.stderr, "quorumkv bench: starting %s in %s\n", desc, path)
		start := time.Now()
		if err := c.Start(sigs.ctx); err != nil {
			if sigs.ctx.Err() != nil {
				fmt.Fprintln(e.stderr, "quorumkv bench: interrupted while starting the cluster")
				return exitOK
			}
			return fail(e, exitInternal, "bench: start cluster: %v", err)
		}
		addrs = c.HTTPAddrs()
		fmt.Fprintf(e.stderr, "quorumkv bench: cluster up in %s: %s\n", time.Since(start).Round(10*time.Millisecond), strings.Join(addrs, " "))
		if len(cfg.Schedule) > 0 {
			cfg.Faults = c
		}
		// An agent dying on its own shows in the errors; say which.
		watchDone := make(chan struct{})
		defer close(watchDone)
		go func() {
			for {
				select {
				case x := <-c.Exits():
					fmt.Fprintf(e.stderr, "\nquorumkv bench: %s (pid %d) exited unexpectedly: %v; log: %s\n", x.Agent.ID, x.Agent.PID, x.Err, x.Agent.LogPath)
				case <-watchDone:
					return
				}
			}
		}()
		if title == "" {
			title = "quorumkv bench: " + desc
		}
	} else if title == "" {
		title = "quorumkv bench: " + strings.Join(addrs, ", ")
	}

	hc, err := client.New(addrs, append([]client.Option{client.WithMaxIdleConnsPerHost(max(cfg.Concurrency, 4))}, p.security...)...)
	if err != nil {
		return fail(e, exitBadInput, "bench: %v", err)
	}
	defer hc.Close()

	if p.creates != nil {
		return p.runCreates(e, sigs.ctx, httpclient.New(hc))
	}
	var mem *memSampler
	if p.f.rssLog != "" {
		if mem, err = startMemSampler(p.f.rssLog, p.f.rssEvery); err != nil {
			return fail(e, exitInternal, "bench: --rss-log: %v", err)
		}
	}
	rep, runErr := bench.Sweep(sigs.ctx, httpclient.New(hc), cfg, p.quorums)
	if mem != nil {
		if err := mem.stop(); err != nil {
			fmt.Fprintf(e.stderr, "quorumkv bench: --rss-log: %v\n", err)
		} else {
			fmt.Fprintf(e.stderr, "quorumkv bench: memory: %s (samples in %s)\n", mem.summary(), p.f.rssLog)
		}
	}
	code := exitOK
	interrupted := runErr != nil && sigs.ctx.Err() != nil
	switch {
	case interrupted:
		fmt.Fprintln(e.stderr, "quorumkv bench: interrupted; results so far:")
	case runErr != nil:
		fmt.Fprintf(e.stderr, "quorumkv bench: %v\n", runErr)
		code = exitInternal
	}
	if rep == nil {
		return code
	}
	rep.Title = title
	if err := rep.WriteText(e.stdout); err != nil {
		return fail(e, exitInternal, "bench: %v", err)
	}
	for _, out := range []struct {
		path  string
		write func(w *bufio.Writer) error
	}{
		{p.f.jsonOut, func(w *bufio.Writer) error { return rep.WriteJSON(w) }},
		{p.f.htmlOut, func(w *bufio.Writer) error { return rep.WriteHTML(w) }},
	} {
		if out.path == "" {
			continue
		}
		if err := writeFile(out.path, out.write); err != nil {
			fmt.Fprintf(e.stderr, "quorumkv bench: %v\n", err)
			code = exitInternal
		} else {
			fmt.Fprintf(e.stderr, "quorumkv bench: wrote %s\n", absPath(out.path)) // firsthour: absolute path (issue 19)
		}
	}
	if v := rep.Violations(); len(v) > 0 && code == exitOK {
		fmt.Fprintf(e.stderr, "quorumkv bench: consistency violated: %s\n", strings.Join(v, "; "))
		code = exitViolation
	}
	return code
}

// writeFile writes path through a buffered writer.
func writeFile(path string, write func(w *bufio.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	err = write(w)
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// memSampler appends one line per interval to a file: seconds since
// start, VmRSS and Go heap in use (KiB), goroutines. It keeps only the
// first, last and largest RSS, so it is itself flat in memory.
type memSampler struct {
	f     *os.File
	start time.Time
	done  chan struct{}
	wg    sync.WaitGroup

	mu                sync.Mutex
	first, last, peak int64
	samples           int
	err               error
}

func startMemSampler(path string, every time.Duration) (*memSampler, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	m := &memSampler{f: f, start: time.Now(), done: make(chan struct{})}
	fmt.Fprintln(f, "# elapsed_s vmrss_kib heap_inuse_kib goroutines")
	m.sample()
	m.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-m.done:
				return
			case <-t.C:
				m.sample()
			}
		}
	})
	return m, nil
}

func (m *memSampler) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss := vmRSS()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.samples == 0 {
		m.first = rss
	}
	m.samples++
	m.last, m.peak = rss, max(m.peak, rss)
	if _, err := fmt.Fprintf(m.f, "%.0f %d %d %d\n", time.Since(m.start).Seconds(), rss, ms.HeapInuse>>10, runtime.NumGoroutine()); err != nil && m.err == nil {
		m.err = err
	}
}

func (m *memSampler) stop() error {
	close(m.done)
	m.wg.Wait()
	m.sample()
	m.mu.Lock()
	err := m.err
	m.mu.Unlock()
	if cerr := m.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (m *memSampler) summary() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fmt.Sprintf("VmRSS first %d KiB, last %d KiB, peak %d KiB over %d samples", m.first, m.last, m.peak, m.samples)
}

// vmRSS reads this process's resident set size in KiB from
// /proc/self/status (0 where there is none).
func vmRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := strings.Fields(string(v))
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

var _ bench.Faults = (*devcluster.Cluster)(nil)
