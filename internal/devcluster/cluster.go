package devcluster

import (
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
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Agent describes one agent of the cluster.
type Agent struct {
	Index   int    // 0-based position; the bench's node index
	ID      string // node id, "n<Index+1>"
	PID     int    // process id of its current (or last) process; 0 before the first start
	HTTP    string // client API address, host:port
	RPC     string // node-to-node RPC address
	Gossip  string // memberlist address (TCP and UDP)
	RESP    string // RESP address; "" without Config.RESP
	DataDir string
	LogPath string
	Running bool // its process is running (possibly paused)
	Paused  bool // stopped with SIGSTOP by Pause
}

// Exit reports an agent process that exited without Kill or Stop asking
// it to, after it had become healthy.
type Exit struct {
	Agent Agent
	Err   error // from exec.Cmd.Wait: exit status or signal
}

// maxExits is the buffer of the Exits channel; further exits are dropped
// until the owner reads.
const maxExits = 64

type agent struct {
	Agent
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the current process has exited
	waitErr error         // valid once exited is closed
	// expected is set before Kill or Stop signal the process: its exit is
	// not reported on Exits. up is set once it answered /healthz.
	expected, up bool
}

// Cluster is a set of agent processes. Create it with New, then Start.
type Cluster struct {
	cfg   Config
	hc    *http.Client
	ctx   context.Context // cancelled by Stop: ends every wait
	stop  context.CancelFunc
	exits chan Exit

	mu      sync.Mutex // guards agents' fields, stopped and reserved
	agents  []*agent
	stopped bool
	// reserved holds the cluster's port reservations (reservePort), ended
	// by Stop.
	reserved []io.Closer
}

// New checks cfg and prepares a cluster; it starts nothing.
func New(cfg Config) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Secret == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		cfg.Secret = hex.EncodeToString(b)
	}
	cfg.AgentArgs = slices.Clone(cfg.AgentArgs)
	cfg.Env = slices.Clone(cfg.Env)
	c := &Cluster{
		cfg:   cfg,
		exits: make(chan Exit, maxExits),
	}
	var err error
	if c.hc, err = cfg.httpClient(); err != nil {
		return nil, err
	}
	c.ctx, c.stop = context.WithCancel(context.Background())
	for i := range cfg.Nodes {
		id := "n" + strconv.Itoa(i+1)
		c.agents = append(c.agents, &agent{Agent: Agent{
			Index: i, ID: id,
			DataDir: filepath.Join(cfg.Dir, id),
			LogPath: filepath.Join(cfg.Dir, id+".log"),
		}})
	}
	return c, nil
}

// MakeDir returns the absolute path of dir, created if missing, or, for ""
// a new temporary directory; temp reports the latter (the caller removes
// it when done, unless asked to keep it).
func MakeDir(dir string) (path string, temp bool, err error) {
	if dir == "" {
		path, err = os.MkdirTemp("", "quorumkv-dev-")
		return path, err == nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", false, err
	}
	path, err = filepath.Abs(dir)
	return path, false, err
}

// Dir returns the cluster's directory.
func (c *Cluster) Dir() string { return c.cfg.Dir }

// Exits delivers agents that exited on their own (crashed, killed from
// outside) after they had become healthy.
func (c *Cluster) Exits() <-chan Exit { return c.exits }

// Agents returns a snapshot of every agent.
func (c *Cluster) Agents() []Agent {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Agent, len(c.agents))
	for i, a := range c.agents {
		out[i] = a.snapshot()
	}
	return out
}

// snapshot needs c.mu held.
func (a *agent) snapshot() Agent {
	s := a.Agent
	s.Running = a.running()
	s.Paused = s.Paused && s.Running
	return s
}

// running needs c.mu held (a.exited changes on restart).
func (a *agent) running() bool {
	if a.exited == nil {
		return false
	}
	select {
	case <-a.exited:
		return false
	default:
		return true
	}
}

// HTTPAddrs returns every agent's HTTP address (host:port), in index order.
func (c *Cluster) HTTPAddrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.agents))
	for i, a := range c.agents {
		out[i] = a.HTTP
	}
	return out
}

func (c *Cluster) logf(format string, args ...any) {
	if c.cfg.Log != nil {
		fmt.Fprintf(c.cfg.Log, c.cfg.Prefix+format+"\n", args...)
	}
}

// Start starts every agent, the first (everyone's seed) before the others,
// and returns once every agent sees every other alive. It fails when an
// agent does not come up (after StartTries on new ports), when the agents
// do not join within JoinTimeout (printing the last log lines of any that
// died), or when ctx ends (an error matching ctx.Err()). Whatever it
// started stays running until Stop.
func (c *Cluster) Start(ctx context.Context) error {
	ctx, cancel := c.merge(ctx)
	defer cancel()
	if c.cfg.BasePort != 0 {
		if err := c.checkFixedPorts(); err != nil {
			return err
		}
	}
	for i := range c.agents {
		if err := c.startWithRetry(ctx, i); err != nil {
			return err
		}
	}
	return c.WaitConverged(ctx)
}

// merge returns ctx, also cancelled by Stop.
func (c *Cluster) merge(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// startWithRetry starts agent i and waits for its /healthz. An agent that
// exits during start (a port taken meanwhile, usually) is tried again on new
// ports; with BasePort there is nothing to change, so it is not.
func (c *Cluster) startWithRetry(ctx context.Context, i int) error {
	a := c.agents[i]
	tries := c.cfg.StartTries
	if c.cfg.BasePort != 0 {
		tries = 1
	}
	for try := 1; ; try++ {
		if err := c.ports(i); err != nil {
			return fmt.Errorf("ports for %s: %w", a.ID, err)
		}
		if err := c.start(a, c.seeds(i, false)); err != nil {
			return fmt.Errorf("start %s: %w", a.ID, err)
		}
		err := c.waitHealthy(ctx, a)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		if errors.Is(err, ErrPortInUse) && try < tries {
			// Another process took a free port between the probe and the
			// agent's bind, and answered in its place: new ports.
			c.logf("%v; retrying on new ports", err)
			c.killStarting(a)
			continue
		}
		var ee *exitedError
		if !errors.As(err, &ee) || ee.a != a {
			c.printTail(a)
			if ee != nil {
				c.printTail(ee.a)
			}
			return fmt.Errorf("%s: %w", a.ID, err)
		}
		if try >= tries {
			c.printTail(a)
			return fmt.Errorf("%s exited during start (%v), %d attempt(s): %w", a.ID, ee.err, try, ErrExited)
		}
		c.logf("%s exited during start (%v); retrying on new ports", a.ID, ee.err)
	}
}

// Prepare gives every agent that has none its addresses (free ports, or
// fixed ones from BasePort, checked free), so they are known before any
// agent runs; StartAgent then starts them one at a time. Start needs no
// Prepare.
func (c *Cluster) Prepare() error {
	if c.cfg.BasePort != 0 {
		return c.checkFixedPorts()
	}
	for i, a := range c.agents {
		c.mu.Lock()
		assigned := a.HTTP != ""
		c.mu.Unlock()
		if assigned {
			continue
		}
		if err := c.ports(i); err != nil {
			return fmt.Errorf("ports for %s: %w", a.ID, err)
		}
	}
	return nil
}

// StartAgent starts agent i's process on its addresses (see Prepare),
// joining the gossip addresses in join (none: it starts a cluster of its
// own), and returns without waiting for it: WaitHealthy and WaitConverged
// wait. It is for tests that order starts themselves (an agent started
// before its seed); Start does the usual.
func (c *Cluster) StartAgent(i int, join []string) error {
	c.mu.Lock()
	a, err := c.agentAt(i)
	if err == nil && a.running() {
		err = fmt.Errorf("start %s: already running: %w", a.ID, ErrState)
	}
	if err == nil && a.HTTP == "" {
		err = fmt.Errorf("start %s: no addresses yet (Prepare): %w", a.ID, ErrState)
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.start(a, join)
}

// WaitHealthy waits until agent i answers /healthz as itself (see
// StartAgent), or StartTimeout passes, ctx ends or a started agent exits.
func (c *Cluster) WaitHealthy(ctx context.Context, i int) error {
	c.mu.Lock()
	a, err := c.agentAt(i)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	ctx, cancel := c.merge(ctx)
	defer cancel()
	return c.waitHealthy(ctx, a)
}

// Terminate stops agent i as an operator would, with SIGTERM (and SIGCONT
// if it is paused), and returns its exit error once it is gone: nil when
// it exited 0. After timeout it is killed, and the error says so. Its
// exit is not reported on Exits.
func (c *Cluster) Terminate(i int, timeout time.Duration) error {
	a, st, err := c.stopping(i, "terminate")
	if err != nil {
		return err
	}
	p, exited := st.p, st.exited
	_ = p.Signal(syscall.SIGTERM)
	if st.paused {
		_ = p.Signal(syscall.SIGCONT)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-exited:
	case <-t.C:
		_ = p.Kill()
		<-exited
		return fmt.Errorf("terminate %s: still running %s after SIGTERM, killed: %w", a.ID, timeout, ErrTimeout)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return a.waitErr
}

// seeds returns the gossip addresses agent i joins. At first start the
// first agent is everyone's seed and joins no one; a restarted agent joins
// every other one, since any of them (the first included) may be down.
func (c *Cluster) seeds(i int, restart bool) []string {
	if !restart {
		if i == 0 {
			return nil
		}
		return []string{c.agents[0].Gossip}
	}
	var out []string
	for j, b := range c.agents {
		if j != i {
			out = append(out, b.Gossip)
		}
	}
	return out
}

// ports assigns agent i its addresses: fixed from BasePort, or free ports,
// reserved below the kernel's ephemeral range (reservePort) or else found
// by binding port 0 (gossip needs one free for TCP and UDP).
func (c *Cluster) ports(i int) error {
	a := c.agents[i]
	var http, rpc, gossip, resp string
	if base := c.cfg.BasePort; base != 0 {
		p := func(off int) string { return "127.0.0.1:" + strconv.Itoa(base+off+i) }
		http, rpc, gossip = p(0), p(100), p(200)
		if c.cfg.RESP {
			resp = p(300)
		}
	} else {
		// Every listener stays open until all four are chosen, so the
		// kernel cannot hand one port out twice; a port another agent was
		// given (which it may not have bound yet) is skipped.
		var held []io.Closer
		defer func() {
			for _, h := range held {
				h.Close()
			}
		}()
		taken := c.takenPorts(i)
		pick := func(udp bool) (string, error) {
			if addr, ok := c.reservePort(udp, taken); ok {
				return addr, nil
			}
			for range 50 {
				addr, hs, err := freePort(udp)
				held = append(held, hs...)
				if err != nil {
					return "", err
				}
				if addr != "" && !taken[addr] {
					return addr, nil
				}
			}
			return "", errors.New("no free loopback port found in 50 tries")
		}
		var err error
		if http, err = pick(false); err != nil {
			return err
		}
		if rpc, err = pick(false); err != nil {
			return err
		}
		if gossip, err = pick(true); err != nil {
			return err
		}
		if c.cfg.RESP {
			if resp, err = pick(false); err != nil {
				return err
			}
		}
	}
	c.mu.Lock()
	a.HTTP, a.RPC, a.Gossip, a.RESP = http, rpc, gossip, resp
	c.mu.Unlock()
	return nil
}

// checkFixedPorts refuses to start on a BasePort whose ports are held:
// the agents would fail to bind, and dev's readiness probe would reach
// whatever holds them.
func (c *Cluster) checkFixedPorts() error {
	for i := range c.agents {
		if err := c.ports(i); err != nil {
			return err
		}
		a := c.agents[i]
		for _, p := range []struct {
			what, addr string
			udp        bool
		}{{"HTTP", a.HTTP, false}, {"RPC", a.RPC, false}, {"gossip", a.Gossip, true}, {"RESP", a.RESP, false}} {
			if p.addr == "" {
				continue
			}
			if err := portFree(p.addr, p.udp); err != nil {
				return fmt.Errorf("%s's %s port %s is taken (another cluster or process holds it: %v): %w",
					a.ID, p.what, p.addr, err, ErrPortInUse)
			}
		}
	}
	return nil
}

// portFree binds addr (TCP, and UDP too with udp) and releases it.
func portFree(addr string, udp bool) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ln.Close()
	if udp {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return err
		}
		pc.Close()
	}
	return nil
}

// killStarting kills agent a's process, started but not yet up, and waits
// for it; its exit is not reported.
func (c *Cluster) killStarting(a *agent) {
	c.mu.Lock()
	a.expected = true
	cmd, exited := a.cmd, a.exited
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// takenPorts returns the addresses given to agents other than i.
func (c *Cluster) takenPorts(i int) map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	taken := make(map[string]bool)
	for j, a := range c.agents {
		if j != i {
			for _, addr := range []string{a.HTTP, a.RPC, a.Gossip, a.RESP} {
				if addr != "" {
					taken[addr] = true
				}
			}
		}
	}
	return taken
}

// freePort binds a free loopback TCP port (and, with udp, the same UDP
// port, as gossip needs both) and returns its address with the open
// listeners, which the caller closes. addr is "" when the UDP port was
// busy: try again.
func freePort(udp bool) (addr string, held []io.Closer, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	held = append(held, ln)
	addr = ln.Addr().String()
	if udp {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return "", held, nil
		}
		held = append(held, pc)
	}
	return addr, held, nil
}

// start runs a new process for agent a, joining seeds.
func (c *Cluster) start(a *agent, seeds []string) error {
	logf, err := os.OpenFile(a.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	args := []string{"agent", "--node-id", a.ID, "--data-dir", a.DataDir,
		"--http", a.HTTP, "--rpc", a.RPC, "--gossip", a.Gossip, "--profile", "local"}
	if a.RESP != "" {
		args = append(args, "--resp", a.RESP)
	}
	if len(seeds) > 0 {
		args = append(args, "--join", strings.Join(seeds, ","))
	}
	args = append(args, c.cfg.AgentArgs...)
	cmd := exec.Command(c.cfg.Exe, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The secret goes through the environment, not argv (visible in ps).
	// Other QUORUMKV_ variables of the caller must not change the agents.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "QUORUMKV_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "QUORUMKV_SECRET="+c.cfg.Secret)
	cmd.Env = append(cmd.Env, c.cfg.Env...)
	if c.cfg.AgentEnv != nil {
		cmd.Env = append(cmd.Env, c.cfg.AgentEnv(a.Index)...)
	}
	setProcAttr(cmd)
	fmt.Fprintf(logf, "--- %sstarting %s at %s\n", c.cfg.Prefix, a.ID, time.Now().Format(time.RFC3339))
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	c.mu.Lock()
	if c.stopped {
		// Stop ran meanwhile and did not see this process.
		c.mu.Unlock()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return ErrStopped
	}
	a.cmd, a.exited, a.PID = cmd, exited, cmd.Process.Pid
	a.expected, a.up, a.Paused = false, false, false
	c.mu.Unlock()
	go func() {
		err := cmd.Wait()
		c.mu.Lock()
		a.waitErr = err
		report := a.up && !a.expected
		snap := a.Agent
		c.mu.Unlock()
		close(exited)
		if report {
			snap.Running, snap.Paused = false, false
			select {
			case c.exits <- Exit{Agent: snap, Err: err}:
			default:
			}
		}
	}()
	return nil
}

// exitedError reports that a watched agent exited while poll waited.
type exitedError struct {
	a   *agent
	err error
}

func (e *exitedError) Error() string { return fmt.Sprintf("%s exited: %v", e.a.ID, e.err) }
func (e *exitedError) Is(target error) bool {
	return target == ErrExited
}

// poll calls cond every 50ms until it holds, the timeout passes, ctx ends,
// or an agent in watch exits.
func (c *Cluster) poll(ctx context.Context, timeout time.Duration, what string, watch []*agent, cond func() bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return nil
		}
		for _, a := range watch {
			c.mu.Lock()
			ch := a.exited
			c.mu.Unlock()
			if ch == nil {
				continue
			}
			select {
			case <-ch:
				return &exitedError{a: a, err: a.waitErr}
			default:
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("waiting for %s: %w after %s", what, ErrTimeout, timeout)
		case <-tick.C:
		}
	}
}

// running returns the agents whose process is running now. A wait
// watches them: one dying meanwhile is an error; one that was already
// down (killed before a Restart of another) is not.
func (c *Cluster) running() []*agent {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*agent
	for _, a := range c.agents {
		if a.running() {
			out = append(out, a)
		}
	}
	return out
}

// waitHealthy waits until a answers /healthz with 200 as itself: the node
// id and the pid of the process this cluster started (so a port held by
// another process, say another cluster's agent, is not taken for a). It
// watches every started agent (one dying meanwhile is an error too).
func (c *Cluster) waitHealthy(ctx context.Context, a *agent) error {
	c.mu.Lock()
	addr, id, pid := a.HTTP, a.ID, a.PID
	c.mu.Unlock()
	var impostor error
	err := c.poll(ctx, c.cfg.StartTimeout, a.ID+" to answer /healthz", append(c.running(), a), func() bool {
		h, status, err := c.health(addr)
		switch {
		case err != nil:
			return false
		case h.Node != id || h.PID != pid:
			impostor = fmt.Errorf("%s: %s answers as node %q (pid %d), not as the %s this cluster started (pid %d): another process holds the port: %w",
				id, addr, h.Node, h.PID, id, pid, ErrPortInUse)
			return true
		}
		return status == http.StatusOK
	})
	if err == nil && impostor != nil {
		return impostor
	}
	if err == nil {
		c.mu.Lock()
		a.up = true
		c.mu.Unlock()
	}
	return err
}

// health asks addr's /healthz who answers.
func (c *Cluster) health(addr string) (h healthBody, status int, err error) {
	res, err := c.get(addr, "/healthz")
	if err != nil {
		return h, 0, err
	}
	defer res.Body.Close()
	if err := json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&h); err != nil {
		return h, res.StatusCode, err
	}
	return h, res.StatusCode, nil
}

// healthBody is what waitHealthy reads of /healthz (api.Health; declared
// here so the package needs nothing of the server's).
type healthBody struct {
	Node string `json:"node"`
	PID  int    `json:"pid"`
}

// WaitConverged waits until every running, unpaused agent lists every such
// agent alive. An agent exiting meanwhile fails it (its log tail goes to
// Config.Log), as do JoinTimeout and ctx.
func (c *Cluster) WaitConverged(ctx context.Context) error {
	ctx, cancel := c.merge(ctx)
	defer cancel()
	var live []*agent
	var addrs []string
	var ids []string
	c.mu.Lock()
	for _, a := range c.agents {
		if a.running() && !a.Paused {
			live = append(live, a)
			addrs = append(addrs, a.HTTP)
			ids = append(ids, a.ID)
		}
	}
	c.mu.Unlock()
	err := c.poll(ctx, c.cfg.JoinTimeout, "every node to see every other alive, and every ring settled", live, func() bool {
		for _, addr := range addrs {
			st := c.memberStates(addr)
			for _, id := range ids {
				if st[id] != "alive" {
					return false
				}
			}
			if !c.ringSettled(addr) {
				return false
			}
		}
		return true
	})
	var ee *exitedError
	if errors.As(err, &ee) {
		c.printTail(ee.a)
	}
	return err
}

// ringSettled reports whether the node at addr routes reads with every
// member on the ring: no ring change in course (a joining member of a
// claim ring is a pending owner until it has received its partitions).
// It asks with the client of every other call (TLS and token included).
func (c *Cluster) ringSettled(addr string) bool {
	res, err := c.get(addr, "/cluster/ring")
	if err != nil {
		return false
	}
	defer res.Body.Close()
	var body struct {
		Change json.RawMessage `json:"change"`
	}
	if res.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(res.Body, 16<<20)).Decode(&body) != nil {
		return false
	}
	return len(body.Change) == 0 || string(body.Change) == "null"
}

// memberStates is the node at addr's view: member id to state (nil on
// error).
func (c *Cluster) memberStates(addr string) map[string]string {
	res, err := c.get(addr, "/cluster/members")
	if err != nil {
		return nil
	}
	defer res.Body.Close()
	var body struct {
		Members []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"members"`
	}
	if res.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&body) != nil {
		return nil
	}
	out := make(map[string]string, len(body.Members))
	for _, m := range body.Members {
		out[m.ID] = m.State
	}
	return out
}

// agentAt returns agent i, or an error when i is out of range or the
// cluster is stopped. It needs c.mu held.
func (c *Cluster) agentAt(i int) (*agent, error) {
	if c.stopped {
		return nil, ErrStopped
	}
	if i < 0 || i >= len(c.agents) {
		return nil, fmt.Errorf("agent %d: the cluster has %d: %w", i, len(c.agents), ErrState)
	}
	return c.agents[i], nil
}

// Kill stops agent i abruptly (SIGKILL, as a crash or kill -9 would) and
// returns once its process is gone. A paused agent is killed too.
func (c *Cluster) Kill(i int) error {
	a, st, err := c.stopping(i, "kill")
	if err != nil {
		return err
	}
	if err := st.p.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %s: %w", a.ID, err)
	}
	<-st.exited
	return nil
}

// stopState is what a stop needs of a running agent, read under c.mu.
type stopState struct {
	p      *os.Process
	exited <-chan struct{}
	paused bool
}

// stopping marks running agent i as expected to exit (its exit is not
// reported on Exits) and returns its process; verb names the operation in
// the ErrState error of an agent that is not running.
func (c *Cluster) stopping(i int, verb string) (*agent, stopState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, err := c.agentAt(i)
	if err == nil && !a.running() {
		err = fmt.Errorf("%s %s: not running: %w", verb, a.ID, ErrState)
	}
	if err != nil {
		return nil, stopState{}, err
	}
	a.expected = true
	return a, stopState{p: a.cmd.Process, exited: a.exited, paused: a.Paused}, nil
}

// Restart starts a killed agent again on its old ports and data, joining
// every other agent, and returns once it answers /healthz and every running
// agent sees it (and it sees them) alive.
func (c *Cluster) Restart(i int) error {
	c.mu.Lock()
	a, err := c.agentAt(i)
	if err == nil && a.running() {
		err = fmt.Errorf("restart %s: still running: %w", a.ID, ErrState)
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if err := c.start(a, c.seeds(i, true)); err != nil {
		return fmt.Errorf("restart %s: %w", a.ID, err)
	}
	ctx, cancel := c.merge(context.Background())
	defer cancel()
	if err := c.waitHealthy(ctx, a); err != nil {
		c.printTail(a)
		return fmt.Errorf("restart %s: %w", a.ID, err)
	}
	if err := c.WaitConverged(ctx); err != nil {
		return fmt.Errorf("restart %s: %w", a.ID, err)
	}
	return nil
}

// Pause freezes agent i with SIGSTOP: its sockets stay open but nothing is
// answered, as for a long GC pause or a hung host. It returns once the
// kernel reports the process stopped (on Linux; elsewhere once signalled).
func (c *Cluster) Pause(i int) error {
	p, id, err := c.setPaused(i, true, "pause", "not running or already paused", syscall.SIGSTOP)
	if err != nil {
		return err
	}
	return c.poll(c.ctx, 5*time.Second, id+" to stop", nil, func() bool {
		st := procState(p.Pid)
		return st != 'R' && st != 'S' && st != 'D'
	})
}

// setPaused marks running agent i paused (or not) and sends it sig; an
// agent that is not running, or already in that state, is refused with
// ErrState. verb and state name the operation and the refused state in
// errors. It returns the agent's process and id.
func (c *Cluster) setPaused(i int, paused bool, verb, state string, sig syscall.Signal) (*os.Process, string, error) {
	c.mu.Lock()
	a, err := c.agentAt(i)
	if err == nil && (!a.running() || a.Paused == paused) {
		err = fmt.Errorf("%s %s: %s: %w", verb, a.ID, state, ErrState)
	}
	if err != nil {
		c.mu.Unlock()
		return nil, "", err
	}
	p := a.cmd.Process
	a.Paused = paused
	c.mu.Unlock()
	if err := p.Signal(sig); err != nil {
		return nil, "", fmt.Errorf("%s %s: %w", verb, a.ID, err)
	}
	return p, a.ID, nil
}

// procState returns the state letter of /proc/<pid>/stat ('T' when
// stopped), or 'T' when it cannot be read (not Linux): then Pause does not
// wait.
func procState(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 'T'
	}
	// pid (comm) state ...: comm may hold spaces and parentheses, so
	// find the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return 'T'
	}
	return b[i+2]
}

// Resume unfreezes a paused agent with SIGCONT.
func (c *Cluster) Resume(i int) error {
	_, _, err := c.setPaused(i, false, "resume", "not paused", syscall.SIGCONT)
	return err
}

// Stop ends every wait in progress, sends SIGTERM to every running agent
// (and SIGCONT to paused ones, which could not act on it otherwise), and
// waits for them; an agent still running StopTimeout later, or when ctx
// ends, gets SIGKILL. It returns how many agents were running. Stop is
// idempotent: later calls return 0.
func (c *Cluster) Stop(ctx context.Context) int {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return 0
	}
	c.stopped = true
	var running []*agent
	var paused []bool
	for _, a := range c.agents {
		if a.running() {
			a.expected = true
			running = append(running, a)
			paused = append(paused, a.Paused)
		}
	}
	c.mu.Unlock()
	c.stop()
	for i, a := range running {
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		if paused[i] {
			_ = a.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	timeout := time.NewTimer(c.cfg.StopTimeout)
	defer timeout.Stop()
	for _, a := range running {
		select {
		case <-a.exited:
		case <-timeout.C:
			c.logf("%s did not stop in %s, killing it", a.ID, c.cfg.StopTimeout)
			_ = a.cmd.Process.Kill()
			<-a.exited
			// The timer fired once; kill the rest at once too.
			timeout.Reset(0)
		case <-ctx.Done():
			for _, b := range running {
				_ = b.cmd.Process.Kill()
			}
			<-a.exited
		}
	}
	c.releasePorts()
	return len(running)
}

// Tail returns the last n lines of agent i's log.
func (c *Cluster) Tail(i, n int) (string, error) {
	if i < 0 || i >= len(c.agents) {
		return "", fmt.Errorf("agent %d: the cluster has %d: %w", i, len(c.agents), ErrState)
	}
	return tail(c.agents[i].LogPath, n)
}

func tail(path string, n int) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n"), nil
}

// printTail writes the last LogTail lines of a's log to Config.Log.
func (c *Cluster) printTail(a *agent) {
	if c.cfg.Log == nil || c.cfg.LogTail == 0 {
		return
	}
	t, err := tail(a.LogPath, c.cfg.LogTail)
	if err != nil {
		c.logf("read %s: %v", a.LogPath, err)
		return
	}
	n := strings.Count(t, "\n") + 1
	fmt.Fprintf(c.cfg.Log, "--- last %d line(s) of %s:\n%s\n---\n", n, a.LogPath, t)
}
