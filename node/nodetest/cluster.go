package nodetest

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/clock"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/node/internal/nodehook"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/transport"
)

// Options tune a Cluster. The zero value is a usable default.
type Options struct {
	// Seed seeds the MemNetwork's fault randomness.
	Seed int64
	// InMemory uses in-memory stores instead of badger directories under
	// t.TempDir().
	InMemory bool
	// Config, if set, adjusts each node's config before it starts.
	Config func(i int, c *node.Config)
	// TCP runs node-to-node RPC over the real TCP transport on 127.0.0.1
	// instead of the MemNetwork (whose faults then do not apply).
	TCP bool
	// Logger, if set, receives every node's logs (default: t.Output at
	// warn level, shown only when the test fails).
	Logger *slog.Logger
	// Bubble is set when the cluster runs inside a testing/synctest
	// bubble (NewCluster called in synctest.Test): the nodes open no
	// socket (no HTTP port, so URL is of no use), each link of the
	// MemNetwork gets a latency of its own (see latency), and WaitFor
	// checks its condition only when every goroutine of the bubble is
	// blocked. Not with TCP.
	Bubble bool
}

// Cluster is a set of nodes in one process.
type Cluster struct {
	t      testing.TB
	opts   Options
	Net    *transport.MemNetwork
	Gossip *Gossip
	// seq runs the network's deliveries and the nodes' timers one per
	// instant in a bubble (nil otherwise).
	seq *clock.Sequencer

	mu    sync.Mutex
	nodes []*node.Node
	dirs  []string
	ids   []string
}

// convergeWait bounds a new cluster's or a new node's convergence: on a
// claim ring each joining member is a pending owner until it has
// exchanged every partition it gains with the old owners, which takes
// seconds under -race on a loaded machine.
const convergeWait = 30 * time.Second

// NewCluster starts n nodes, joins them and waits until every node's ring
// holds all n. The nodes are closed by t.Cleanup.
func NewCluster(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	if opts.Bubble && opts.TCP {
		t.Fatal("nodetest: a cluster in a synctest bubble cannot use TCP")
	}
	c := &Cluster{t: t, opts: opts, Net: transport.NewMemNetwork(opts.Seed), Gossip: NewGossip()}
	if opts.Bubble {
		c.Net.SetLatency(latency)
		c.seq = clock.NewSequencer()
		c.Net.SetSequencer(c.seq)
		c.Gossip.seq = c.seq
	}
	c.nodes = make([]*node.Node, n)
	for i := range n {
		c.ids = append(c.ids, fmt.Sprintf("n%d", i+1))
		dir := ""
		if !opts.InMemory {
			dir = t.TempDir()
		}
		c.dirs = append(c.dirs, dir)
	}
	t.Cleanup(c.closeAll)
	for i := range n {
		c.start(i)
	}
	c.WaitConverged(convergeWait)
	return c
}

func (c *Cluster) logger() *slog.Logger {
	if c.opts.Logger != nil {
		return c.opts.Logger
	}
	return slog.New(slog.NewTextHandler(c.t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// Config returns the config node i starts with.
func (c *Cluster) Config(i int) node.Config {
	id := c.ids[i]
	cfg := node.DefaultLocalConfig()
	cfg.NodeID = id
	cfg.DataDir = c.dirs[i]
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.RPCAddr = ""
	cfg.GossipAddr = ""
	cfg.Secret = "nodetest"
	cfg.Logger = c.logger()
	cfg.Join = []string{"mem:0"}
	cfg.JoinRetry = 20 * time.Millisecond
	// Q as before claim rings: a node joining a claim ring exchanges each
	// partition it gains with each old owner, which at the default 1024
	// makes every cluster's start-up (its members join one by one) slow on
	// a loaded test machine.
	cfg.Ring.Partitions = ring.LegacyPartitions
	cfg.Hints.Interval = 50 * time.Millisecond
	cfg.NewTransport = func(h transport.Handler) (transport.Transport, error) {
		return c.Net.Listen(id, id, h)
	}
	if c.opts.TCP {
		cfg.NewTransport = nil
		cfg.RPCAddr = "127.0.0.1:0"
	}
	if c.opts.Bubble {
		cfg.HTTPAddr = ""
		cfg.Clock = c.seq.Clock(id)
	}
	cfg.NewMembership = c.Gossip.Factory(id)
	if c.opts.Config != nil {
		c.opts.Config(i, &cfg)
	}
	return cfg
}

func (c *Cluster) start(i int) {
	c.t.Helper()
	nd, err := node.New(c.Config(i))
	if err != nil {
		c.t.Fatalf("start %s: %v", c.ids[i], err)
	}
	c.mu.Lock()
	c.nodes[i] = nd
	c.mu.Unlock()
}

func (c *Cluster) closeAll() {
	for i, nd := range c.Nodes() {
		if nd != nil {
			if err := nd.Close(); err != nil {
				c.t.Errorf("close %s: %v", c.ids[i], err)
			}
		}
	}
}

// AddNode starts one more node (id n<Len()+1>), joins it and waits until
// the cluster has converged on the larger ring. It returns its index.
func (c *Cluster) AddNode() int {
	c.t.Helper()
	i := c.StartNode()
	c.WaitConverged(convergeWait)
	return i
}

// StartNode starts one more node (id n<Len()+1>) and joins it, without
// waiting for the ring to take it in (on a claim ring it is a pending
// owner until it has received its partitions). It returns its index.
func (c *Cluster) StartNode() int {
	c.t.Helper()
	c.mu.Lock()
	i := len(c.ids)
	c.ids = append(c.ids, fmt.Sprintf("n%d", i+1))
	dir := ""
	if !c.opts.InMemory {
		dir = c.t.TempDir()
	}
	c.dirs = append(c.dirs, dir)
	c.nodes = append(c.nodes, nil)
	c.mu.Unlock()
	c.start(i)
	return i
}

// Dir returns node i's data directory ("" for in-memory stores).
func (c *Cluster) Dir(i int) string { return c.dirs[i] }

// Nodes returns the current node objects (nil for a killed node).
func (c *Cluster) Nodes() []*node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*node.Node(nil), c.nodes...)
}

// Node returns node i (0-based), nil if killed.
func (c *Cluster) Node(i int) *node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// ID returns node i's id ("n1" for i = 0).
func (c *Cluster) ID(i int) string { return c.ids[i] }

// Len is the number of nodes, killed ones included.
func (c *Cluster) Len() int { return len(c.ids) }

// URL returns node i's client API base URL.
func (c *Cluster) URL(i int) string { return "http://" + c.Node(i).HTTPAddr() }

// Kill stops node i (cleanly: its store is closed so it can restart on
// the same directory) and marks it dead in gossip.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	nd := c.takeOut(i)
	if nd == nil {
		return
	}
	if err := nd.Close(); err != nil {
		c.t.Errorf("kill %s: %v", c.ids[i], err)
	}
}

// Crash stops node i as a crash would (node.Node.Crash): no drain, no
// gossip leave, no clean-shutdown mark, so its next start takes the
// unclean-start path. Its store is closed, so Restart can reopen the
// directory in this process.
func (c *Cluster) Crash(i int) {
	c.t.Helper()
	if nd := c.takeOut(i); nd != nil {
		// Errors of the skipped steps are expected; a store that fails to
		// close shows at the restart.
		_ = nodehook.Crash(nd)
	}
}

// takeOut removes node i from the running set and returns it (nil if it
// was not running).
func (c *Cluster) takeOut(i int) *node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	nd := c.nodes[i]
	c.nodes[i] = nil
	return nd
}

// Restart starts node i again on its data directory and waits until it
// is back in every live node's view.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.start(i)
	c.Gossip.SetDead(c.ids[i], false)
}

// Isolate cuts node i off at both layers: its messages are lost and gossip
// reports it dead to the others (and the others dead to it).
func (c *Cluster) Isolate(i int) {
	c.Net.Isolate(c.ids[i])
	c.Gossip.SetDead(c.ids[i], true)
}

// Heal removes every network fault and marks every running node alive.
func (c *Cluster) Heal() {
	c.Net.Heal()
	for i, id := range c.ids {
		if c.Node(i) != nil {
			c.Gossip.SetDead(id, false)
		}
	}
}

// WaitConverged waits until every running node's ring holds every node and
// every running node sees every other running node alive.
func (c *Cluster) WaitConverged(timeout time.Duration) {
	c.t.Helper()
	c.waitDescribed(timeout, "every ring holds every node and every node sees the others alive", func() bool {
		nodes := c.Nodes()
		for _, nd := range nodes {
			if nd == nil {
				continue
			}
			if nd.Ring().Len() != c.onRing() {
				return false
			}
			for j, other := range nodes {
				if other != nil && !nd.Alive(ring.NodeID(c.ids[j])) {
					return false
				}
			}
		}
		return true
	})
}

// waitDescribed is WaitFor that, on a timeout, also logs each running
// node's view (ring members, the change in course, this node's transfers,
// who it sees alive): a cluster that does not converge is otherwise one
// line that says nothing of where it stopped.
func (c *Cluster) waitDescribed(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	done := false
	defer func() {
		if !done {
			c.t.Log(c.describe())
		}
	}()
	c.WaitFor(timeout, what, cond)
	done = true
}

// describe returns each running node's view of the ring and of its peers.
func (c *Cluster) describe() string {
	var b strings.Builder
	for i, nd := range c.Nodes() {
		if nd == nil {
			fmt.Fprintf(&b, "\n%s: not running", c.ids[i])
			continue
		}
		var r api.Ring
		nd.DescribeRing(&r, nd.Ring())
		alive := []string{}
		for j := range c.ids {
			if nd.Alive(ring.NodeID(c.ids[j])) {
				alive = append(alive, c.ids[j])
			}
		}
		tr := nd.Transfers()
		fmt.Fprintf(&b, "\n%s: ring %v, alive %v, change %+v; transfers: committed %s target %q gains %d received %d ready %v waiting for %v unaware %v",
			c.ids[i], nd.Ring().Members(), alive, r.Change, tr.Committed, tr.Target, tr.Gains, tr.Received, tr.Ready, tr.WaitingFor, tr.Unaware)
	}
	return b.String()
}

// WaitAllAlive waits until every running node lists every node as a
// member, each alive (not suspect): NewCluster returns once every ring
// holds every node, which can be just before the liveness of the last one
// to join is known.
func (c *Cluster) WaitAllAlive(timeout time.Duration) {
	c.t.Helper()
	c.WaitFor(timeout, "every node to see every node alive", func() bool {
		for _, nd := range c.Nodes() {
			if nd == nil {
				continue
			}
			ms := nd.Members()
			if len(ms) != c.Len() {
				return false
			}
			for _, m := range ms {
				if m.State != "alive" {
					return false
				}
			}
		}
		return true
	})
}

// onRing counts the running nodes that have not left the ring, as node 1...
// sees it: every running node, unless a test made one leave.
func (c *Cluster) onRing() int {
	n := 0
	for _, nd := range c.Nodes() {
		if nd == nil {
			continue
		}
		for _, m := range nd.Members() {
			if m.Self && m.OnRing {
				n++
			}
		}
	}
	// Killed nodes stay on the ring.
	for _, nd := range c.Nodes() {
		if nd == nil {
			n++
		}
	}
	return n
}

// latency is a link's one-way latency in a bubble: 100µs to 1.1ms, a
// pseudo-random number of nanoseconds fixed by the link's name. Messages
// that leave at the same fake instant (the replies to one coordinator's
// fan-out) then arrive one after another in an order fixed by the links,
// not by the goroutine scheduler, so a seed replays the same history.
func latency(l transport.Link) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(l.From + "\x00" + l.To))
	return 100*time.Microsecond + time.Duration(h.Sum64()%uint64(time.Millisecond))
}

// WaitFor waits until cond holds or timeout passes (then fails the test).
// In a bubble, cond is checked only once the cluster is idle at the
// current fake instant (synctest.Wait), so the instant at which it first
// holds is the same on every run.
func (c *Cluster) WaitFor(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	if c.opts.Bubble {
		WaitFor(c.t, timeout, what, func() bool {
			synctest.Wait()
			return cond()
		})
		return
	}
	WaitFor(c.t, timeout, what, cond)
}

// WaitFor polls cond every few milliseconds until it holds, failing t after
// timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for wait := time.Millisecond; ; wait = min(wait*2, 50*time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", timeout, what)
		}
		time.Sleep(wait)
	}
}

// Client returns an HTTP client for tests with a sane timeout.
func Client() *http.Client { return &http.Client{Timeout: 30 * time.Second} }

// Ctx returns a context for one test step.
func Ctx(t testing.TB) context.Context {
	if tt, ok := t.(interface{ Context() context.Context }); ok {
		return tt.Context()
	}
	return context.Background()
}
