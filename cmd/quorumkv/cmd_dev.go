package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

func init() {
	register(&command{Name: "dev", OwnSignals: true, Order: 2, Summary: "start a local cluster of agents on 127.0.0.1", Run: runDev})
}

// Dev cluster timings.
const (
	devStartTimeout = 30 * time.Second // one agent: process start to /healthz
	devJoinTimeout  = 30 * time.Second // all agents: every one sees every other alive
	devStopTimeout  = 15 * time.Second // SIGTERM to exit, then SIGKILL (the node drains for up to 10s)
	devStartTries   = 3                // attempts per agent, with new ports, when it exits during start
	devLogTail      = 20               // log lines shown for an agent that died
	devMaxNodes     = 32
)

// devAgent is one agent process of the dev cluster.
type devAgent struct {
	id                      string
	http, rpc, gossip, resp string
	dataDir, logPath        string
	cmd                     *exec.Cmd
	exited                  chan struct{} // closed when the process has exited
	waitErr                 error         // valid after exited is closed
}

type devCluster struct {
	e       *env
	exe     string
	dir     string
	secret  string
	resp    bool
	base    int // 0: pick free ports
	agents  []*devAgent
	hc      *http.Client
	stopped bool
}

func runDev(e *env, args []string) int {
	fs := newFlagSet(e, "dev", "[--nodes 3] [--dir DIR] [flags]", `
Starts a local cluster of agent processes of this binary on 127.0.0.1, each
joining the first one's gossip address, waits until every node sees every
other alive, prints their addresses and example commands, then waits.
Ctrl-C (or SIGTERM) stops every agent: SIGTERM, then SIGKILL after 15s. If
an agent dies on its own, dev prints its last log lines, stops the others
and exits 1.

Data and logs go under --dir (default: a new temporary directory, removed on
exit unless --keep). Agents run with --profile local (failures detected in
about a second).`)
	nodes := fs.Int("nodes", 3, "number of agents")
	dir := fs.String("dir", "", "directory for data and logs (kept on exit; default: a temporary one)")
	keep := fs.Bool("keep", false, "keep the temporary directory on exit")
	secret := fs.String("secret", "", "cluster secret (default: random for this run)")
	base := fs.Int("base-port", 0, "fixed ports: node i (0-based) uses HTTP base+i, RPC base+100+i, gossip base+200+i, RESP base+300+i (default: free ports)")
	resp := fs.Bool("resp", false, "give every agent a RESP (Redis protocol) listener")
	pos, code, ok := parseArgs(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 0 {
		return fail(e, exitBadInput, "dev takes no arguments, got %q", pos)
	}
	if *nodes < 1 || *nodes > devMaxNodes {
		return fail(e, exitBadInput, "--nodes %d: want 1 to %d", *nodes, devMaxNodes)
	}
	if *base != 0 && (*base < 1024 || *base+300+*nodes > 65535) {
		return fail(e, exitBadInput, "--base-port %d: want 1024 to %d", *base, 65535-300-*nodes)
	}
	exe, err := os.Executable()
	if err != nil {
		return fail(e, exitInternal, "find this binary: %v", err)
	}
	d := &devCluster{e: e, exe: exe, secret: *secret, resp: *resp, base: *base,
		hc: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}}
	if d.secret == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		d.secret = hex.EncodeToString(b)
	}
	removeDir := false
	if *dir != "" {
		if err := os.MkdirAll(*dir, 0o755); err != nil {
			return fail(e, exitBadInput, "--dir: %v", err)
		}
		d.dir, err = filepath.Abs(*dir)
		if err != nil {
			return fail(e, exitBadInput, "--dir: %v", err)
		}
	} else {
		d.dir, err = os.MkdirTemp("", "quorumkv-dev-")
		if err != nil {
			return fail(e, exitInternal, "temporary directory: %v", err)
		}
		removeDir = !*keep
	}
	code = d.run(*nodes)
	if removeDir {
		if err := os.RemoveAll(d.dir); err != nil {
			fmt.Fprintf(e.stderr, "quorumkv dev: remove %s: %v\n", d.dir, err)
		}
	} else {
		fmt.Fprintf(e.stderr, "quorumkv dev: data and logs kept in %s\n", d.dir)
	}
	return code
}

func (d *devCluster) run(n int) int {
	defer d.stopAll()
	start := time.Now()
	for i := range n {
		d.agents = append(d.agents, &devAgent{
			id:      "n" + strconv.Itoa(i+1),
			dataDir: filepath.Join(d.dir, "n"+strconv.Itoa(i+1)),
			logPath: filepath.Join(d.dir, "n"+strconv.Itoa(i+1)+".log"),
		})
	}
	// The first agent is everyone's seed: it must be up (its gossip port
	// settled) before the others start.
	if code := d.startWithRetry(0); code != exitOK {
		return code
	}
	for i := 1; i < n; i++ {
		if code := d.startWithRetry(i); code != exitOK {
			return code
		}
	}
	if code := d.waitJoined(); code != exitOK {
		return code
	}
	d.printReady(time.Since(start))
	return d.watch()
}

// ports assigns agent i its addresses: fixed from --base-port, or free
// ports found by binding port 0 (gossip needs one free for TCP and UDP).
func (d *devCluster) ports(i int) error {
	a := d.agents[i]
	if d.base != 0 {
		p := func(off int) string { return "127.0.0.1:" + strconv.Itoa(d.base+off+i) }
		a.http, a.rpc, a.gossip = p(0), p(100), p(200)
		if d.resp {
			a.resp = p(300)
		}
		return nil
	}
	var err error
	if a.http, err = freeTCP(); err != nil {
		return err
	}
	if a.rpc, err = freeTCP(); err != nil {
		return err
	}
	if a.gossip, err = freeTCPUDP(); err != nil {
		return err
	}
	if d.resp {
		if a.resp, err = freeTCP(); err != nil {
			return err
		}
	}
	return nil
}

func freeTCP() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func freeTCPUDP() (string, error) {
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		addr := ln.Addr().String()
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err == nil {
			pc.Close()
			return addr, nil
		}
	}
	return "", errors.New("no port free for both TCP and UDP")
}

// startWithRetry starts agent i and waits for its /healthz. An agent that
// exits during start (a port taken meanwhile, usually) is tried again on new
// ports; with --base-port there is nothing to change, so it is not.
func (d *devCluster) startWithRetry(i int) int {
	a := d.agents[i]
	tries := devStartTries
	if d.base != 0 {
		tries = 1
	}
	for try := 1; ; try++ {
		if err := d.ports(i); err != nil {
			return fail(d.e, exitInternal, "dev: ports for %s: %v", a.id, err)
		}
		if err := d.start(a); err != nil {
			return fail(d.e, exitInternal, "dev: start %s: %v", a.id, err)
		}
		err := d.waitHealthy(a)
		if err == nil {
			return exitOK
		}
		if errors.Is(err, errInterrupted) {
			return exitOK
		}
		select {
		case <-a.exited:
		default:
			// Up but not healthy in time: not a port clash.
			d.printTail(a)
			return fail(d.e, exitInternal, "dev: %s: %v", a.id, err)
		}
		if try >= tries {
			d.printTail(a)
			return fail(d.e, exitInternal, "dev: %s exited during start (%v), %d attempt(s)", a.id, a.waitErr, try)
		}
		fmt.Fprintf(d.e.stderr, "quorumkv dev: %s exited during start (%v); retrying on new ports\n", a.id, a.waitErr)
	}
}

func (d *devCluster) start(a *devAgent) error {
	logf, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	args := []string{"agent", "--node-id", a.id, "--data-dir", a.dataDir,
		"--http", a.http, "--rpc", a.rpc, "--gossip", a.gossip, "--profile", "local"}
	if a.resp != "" {
		args = append(args, "--resp", a.resp)
	}
	if seed := d.agents[0]; seed != a {
		args = append(args, "--join", seed.gossip)
	}
	cmd := exec.Command(d.exe, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The secret goes through the environment, not argv (visible in ps).
	// Other QUORUMKV_ variables of the caller must not change the agents.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "QUORUMKV_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "QUORUMKV_SECRET="+d.secret)
	setDevProcAttr(cmd)
	fmt.Fprintf(logf, "--- quorumkv dev: starting %s at %s\n", a.id, time.Now().Format(time.RFC3339))
	if err := cmd.Start(); err != nil {
		return err
	}
	a.cmd = cmd
	a.exited = make(chan struct{})
	go func() {
		a.waitErr = cmd.Wait()
		close(a.exited)
	}()
	return nil
}

var errInterrupted = errors.New("interrupted")

// poll calls cond every 50ms until it holds, the deadline passes, a signal
// arrives, or an agent exits.
func (d *devCluster) poll(timeout time.Duration, what string, cond func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return nil
		}
		for _, a := range d.agents {
			if a.exited == nil {
				continue
			}
			select {
			case <-a.exited:
				return fmt.Errorf("%s exited: %v", a.id, a.waitErr)
			default:
			}
		}
		select {
		case <-d.e.sigs:
			fmt.Fprintln(d.e.stderr, "quorumkv dev: interrupted, stopping")
			return errInterrupted
		case <-deadline.C:
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}

func (d *devCluster) waitHealthy(a *devAgent) error {
	return d.poll(devStartTimeout, a.id+" to answer /healthz", func() bool {
		res, err := d.hc.Get("http://" + a.http + "/healthz")
		if err != nil {
			return false
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
}

// waitJoined waits until every agent lists every other as alive.
func (d *devCluster) waitJoined() int {
	err := d.poll(devJoinTimeout, "every node to see every other alive", func() bool {
		for _, a := range d.agents {
			if aliveCount(d.hc, a.http) != len(d.agents) {
				return false
			}
		}
		return true
	})
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errInterrupted):
		return exitOK
	}
	for _, a := range d.agents {
		select {
		case <-a.exited:
			d.printTail(a)
		default:
		}
	}
	return fail(d.e, exitInternal, "dev: %v", err)
}

// aliveCount is how many members the node at addr sees alive (-1 on error).
func aliveCount(hc *http.Client, addr string) int {
	res, err := hc.Get("http://" + addr + "/cluster/members")
	if err != nil {
		return -1
	}
	defer res.Body.Close()
	var body struct {
		Members []struct {
			State string `json:"state"`
		} `json:"members"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&body); err != nil {
		return -1
	}
	n := 0
	for _, m := range body.Members {
		if m.State == "alive" {
			n++
		}
	}
	return n
}

// cliName is how to invoke this binary in the printed examples.
func (d *devCluster) cliName() string {
	if strings.Contains(d.exe, "go-build") {
		return "go run ./cmd/quorumkv"
	}
	return "quorumkv"
}

func (d *devCluster) printReady(took time.Duration) {
	w := d.e.stdout
	fmt.Fprintf(w, "quorumkv dev: %d node(s) up and joined in %s\n\n", len(d.agents), took.Round(10*time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPID\tHTTP\tRPC\tGOSSIP\tRESP\t")
	var addrs []string
	for _, a := range d.agents {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t\n", a.id, a.cmd.Process.Pid, a.http, a.rpc, a.gossip, orDash(a.resp))
		addrs = append(addrs, a.http)
	}
	tw.Flush()
	q := d.cliName()
	first := d.agents[0].http
	var b bytes.Buffer
	fmt.Fprintf(&b, "\nData and logs: %s", d.dir)
	fmt.Fprintf(&b, "  (logs: %s)\n", filepath.Join(d.dir, "n*.log"))
	fmt.Fprintf(&b, "\nTry, in another terminal:\n")
	fmt.Fprintf(&b, "  export QUORUMKV_ADDR=%s\n", strings.Join(addrs, ","))
	fmt.Fprintf(&b, "  %s put greeting hello --w 3\n", q)
	fmt.Fprintf(&b, "  %s get greeting --r 1\n", q)
	fmt.Fprintf(&b, "  %s members\n", q)
	fmt.Fprintf(&b, "  curl -i http://%s/kv/greeting\n", first)
	fmt.Fprintf(&b, "  curl -s 'http://%s/cluster/members'\n", first)
	fmt.Fprintf(&b, "\nCtrl-C stops every node.\n")
	w.Write(b.Bytes())
}

// watch waits for a signal (exit 0) or an agent's death (exit 1).
func (d *devCluster) watch() int {
	died := make(chan *devAgent, len(d.agents))
	for _, a := range d.agents {
		go func() {
			<-a.exited
			died <- a
		}()
	}
	select {
	case sig := <-d.e.sigs:
		fmt.Fprintf(d.e.stderr, "quorumkv dev: %s: stopping %d node(s)\n", sig, len(d.agents))
		return exitOK
	case a := <-died:
		fmt.Fprintf(d.e.stderr, "quorumkv dev: %s (pid %d) exited unexpectedly: %v\n", a.id, a.cmd.Process.Pid, a.waitErr)
		d.printTail(a)
		return exitInternal
	}
}

// stopAll sends SIGTERM to every running agent, waits, and kills the ones
// still running after devStopTimeout.
func (d *devCluster) stopAll() {
	if d.stopped {
		return
	}
	d.stopped = true
	var running []*devAgent
	for _, a := range d.agents {
		if a.cmd == nil {
			continue
		}
		select {
		case <-a.exited:
			continue
		default:
		}
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		running = append(running, a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), devStopTimeout)
	defer cancel()
	for _, a := range running {
		select {
		case <-a.exited:
		case <-ctx.Done():
			fmt.Fprintf(d.e.stderr, "quorumkv dev: %s did not stop in %s, killing it\n", a.id, devStopTimeout)
			_ = a.cmd.Process.Kill()
			<-a.exited
		case <-d.e.sigs:
			fmt.Fprintln(d.e.stderr, "quorumkv dev: second signal, killing every node")
			for _, b := range running {
				_ = b.cmd.Process.Kill()
			}
			<-a.exited
		}
	}
	if len(running) > 0 {
		fmt.Fprintf(d.e.stderr, "quorumkv dev: %d node(s) stopped\n", len(running))
	}
}

// printTail prints the last lines of an agent's log.
func (d *devCluster) printTail(a *devAgent) {
	b, err := os.ReadFile(a.logPath)
	if err != nil {
		fmt.Fprintf(d.e.stderr, "quorumkv dev: read %s: %v\n", a.logPath, err)
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > devLogTail {
		lines = lines[len(lines)-devLogTail:]
	}
	fmt.Fprintf(d.e.stderr, "--- last %d line(s) of %s:\n%s\n---\n", len(lines), a.logPath, strings.Join(lines, "\n"))
}
