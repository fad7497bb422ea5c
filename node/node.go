package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumkv/quorumkv/antientropy"
	"github.com/quorumkv/quorumkv/clock"
	"github.com/quorumkv/quorumkv/connlimit"
	"github.com/quorumkv/quorumkv/ctxauth"
	"github.com/quorumkv/quorumkv/hintedhandoff"
	"github.com/quorumkv/quorumkv/internal/driverenv"
	"github.com/quorumkv/quorumkv/internal/ratelog"
	"github.com/quorumkv/quorumkv/memberauth"
	"github.com/quorumkv/quorumkv/node/internal/nodehook"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/replica"
	"github.com/quorumkv/quorumkv/resp"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/ringchange"
	"github.com/quorumkv/quorumkv/ringstage"
	"github.com/quorumkv/quorumkv/siblings"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/transport"
)

// Node is one running peer. Create it with New; stop it with Close.
type Node struct {
	cfg Config
	log *slog.Logger
	clk clock.Clock
	now func() time.Time

	st    *store.Store
	dir   replica.Dir
	gate  *replica.Gate
	rep   *replica.Replica
	coord *quorum.Coordinator
	tr    transport.Transport
	ml    Membership

	// mu guards state and peers; ring is rebuilt from state on change.
	mu    sync.RWMutex
	state ClusterState
	peers map[string]Peer
	ring  atomic.Pointer[ring.Ring]
	rc    *ringchange.Change // claim rings: target, commit, transfers (ringchange.go)

	persistCh chan struct{}
	// stateLoaded is set once the ring state was read from the store.
	stateLoaded bool
	ctxSigner   *ctxauth.Signer // signs client contexts (context.go)
	// id signs this node's member record (memberauth.go). seenAlive
	// (guarded by mu) is when each peer was last seen alive, for removes;
	// memberRejects and memberRejectLog count and rate-limit refused
	// records (guarded by mu).
	id              memberauth.Identity
	seenAlive       map[string]time.Time
	memberRejects   uint64
	memberRejectLog time.Time
	deadCh          chan string // ids of peers gossip declared dead, for forgetLoop

	// joined is set once a seed other than this node answered (join.go).
	joined atomic.Bool
	stage  ringstage.Self // this node's own staged changes (ringstage.go)
	probe  storeProbe     // /readyz's store write (ready.go)

	httpLn  net.Listener
	httpSrv *http.Server
	limits  Limits                         // Config.Limits with defaults (limits.go)
	ratelog *ratelog.Limiter               // hostile-input log lines (limits.go)
	caps    map[string]*connlimit.Listener // client ports' caps by name, for tests

	metrics  *metrics
	sibNotes siblingNotes // firsthour (issue 19): writes.go
	hints    *hintedhandoff.Driver
	ae       *antientropy.Driver
	trees    *antientropy.Trees
	resp     *resp.Server

	// ctx is the node's lifetime: cancelled by Close, it stops every loop.
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closing atomic.Bool
	crashed atomic.Bool // Crash: Close skips the clean-shutdown steps
	closed  chan struct{}
	once    sync.Once
	err     error
}

// New starts a peer: it opens the store, starts the transport, gossip and
// the client API, and returns once they are listening. It joins the
// configured peers in the background.
func New(cfg Config) (n *Node, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := cfg.ProtectedModeError(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("node", cfg.NodeID)
	n = &Node{
		cfg:       cfg,
		log:       log,
		clk:       clock.Or(cfg.Clock),
		now:       cfg.Now,
		peers:     make(map[string]Peer),
		seenAlive: make(map[string]time.Time),
		persistCh: make(chan struct{}, 1),
		deadCh:    make(chan string, 64),
		closed:    make(chan struct{}),
	}
	n.rc = ringchange.New(cfg.NodeID, log)
	if n.now == nil {
		n.now = n.clk.Now
	}
	n.probe.Clock = n.clk
	n.ctx, n.cancel = context.WithCancel(context.Background())
	// On a failed start, release what was opened. The named result n is nil
	// by then (return nil, err), so close through a copy.
	started := n
	defer func() {
		if err != nil {
			started.Close()
		}
	}()
	n.metrics = newMetrics(n)
	n.limits = cfg.Limits.withDefaults()
	n.newRatelog()
	n.budgetMetrics()

	if err := n.openStore(); err != nil {
		return nil, startErr("data-dir", cfg.DataDir, err)
	}
	n.storeStateMetrics()
	if err := n.loadIdentity(); err != nil {
		return nil, err
	}
	if err := n.loadState(); err != nil {
		return nil, err
	}
	if n.ctxSigner, err = newContextSigner(cfg, n.state.ContextKey); err != nil {
		return nil, err
	}
	n.stateLoaded = true
	// The replica's collaborators come first: the gate anti-entropy closes,
	// the trees it keeps, the hint caps hinted handoff enforces.
	n.gate = &replica.Gate{}
	if n.trees, err = antientropy.NewTrees(n.Ring().Partitions(), cfg.AntiEntropy.LeafBits); err != nil {
		return nil, err
	}
	env := driverenv.Env{Self: cfg.NodeID, N: cfg.Defaults.N, CallTimeout: cfg.Defaults.Timeout,
		Metrics: n.metrics.reg, Logger: log, Clock: n.clk, Now: n.now}
	n.hints, err = hintedhandoff.New(cfg.Hints, hintedhandoff.Deps{Env: env, Store: n.st, Host: hintHost{n}})
	if err != nil {
		return nil, fmt.Errorf("hints: %w", err)
	}
	n.rep, err = replica.New(replica.Config{
		Self: cfg.NodeID, Store: n.st, Epochs: n.dir.Epochs, Sync: cfg.Sync, Gate: n.gate,
		Observer: n.trees.Observe, AcceptHint: n.hints.Accept, HintStored: n.hints.Stored,
		Siblings: cfg.siblingPolicy(), Trimmed: n.noteTrimmed, Now: n.now,
	})
	if err != nil {
		return nil, err
	}
	n.coord, err = quorum.New(quorum.Config{
		Self:           ring.NodeID(cfg.NodeID),
		Membership:     n,
		Replicas:       replicas{n},
		Defaults:       cfg.Defaults,
		MaxN:           cfg.MaxN,
		ReadRepairWait: cfg.ReadRepairWait,
		ReadQuorumOnly: cfg.ReadQuorumOnly,
		Now:            n.now,
		OnReadRepair:   n.metrics.onReadRepair,
		Logger:         log, Siblings: cfg.siblingPolicy(), Trimmed: n.noteTrimmed,
	})
	if err != nil {
		return nil, err
	}
	// The trees are built from the store here, before the transport
	// starts, so no write races the build.
	n.ae, err = antientropy.New(cfg.AntiEntropy, antientropy.Deps{Env: env, MaxKeySize: cfg.MaxKeySize,
		Host: aeHost{n}, Replica: n.rep, Gate: n.gate, Trees: n.trees, Store: n.st})
	if err != nil {
		return nil, fmt.Errorf("anti-entropy: %w", err)
	}

	// firsthour (issue 19 item 1): n.tr is set only on success. A failed
	// transport.Listen returns a nil *TCP; stored in the Transport interface
	// it is not nil, and Close called it (nil pointer dereference).
	var tr transport.Transport
	if cfg.NewTransport != nil {
		tr, err = cfg.NewTransport(transport.HandlerFunc(n.serveRPC))
	} else {
		tc := transport.DefaultConfig()
		tc.NodeID = cfg.NodeID
		tc.ListenAddr = cfg.RPCAddr
		tc.AdvertiseAddr = cfg.advertisedBeforeListen(cfg.RPCAddr)
		tc.Secret = []byte(cfg.Secret)
		tc.AcceptV1Peers = cfg.AcceptV1Peers
		tc.Handler = transport.HandlerFunc(n.serveRPC)
		tc.Budget = n.limits.Budget
		tc.Logger = log.With("component", "transport")
		var tcp *transport.TCP
		if tcp, err = transport.Listen(tc); err == nil {
			tr = tcp
		}
	}
	if err != nil {
		return nil, startErr("rpc", cfg.RPCAddr, err)
	}
	n.tr = tr
	if cfg.WrapTransport != nil {
		n.tr = cfg.WrapTransport(n.tr)
	}
	if cfg.Secret == "" {
		log.Warn("no cluster secret: node-to-node RPC is unauthenticated and gossip unencrypted")
	}

	// Without HTTPAddr there is no client port (Validate allows it only
	// without RESPAddr): an embedder that calls the Coordinator, or a
	// cluster in a synctest bubble, where a listening socket would keep
	// the bubble from ever going idle and its clock from moving.
	if cfg.HTTPAddr != "" {
		if err := n.startHTTP(); err != nil {
			return nil, err
		}
	}
	if cfg.RESPAddr != "" {
		if err := n.startRESP(); err != nil {
			return nil, err
		}
	}
	// Publish our own record (addresses now known) before gossip starts.
	n.refreshSelf()

	if cfg.NewMembership != nil {
		n.ml, err = cfg.NewMembership(gossipDelegate{n})
	} else {
		n.ml, err = newMemberlist(cfg, gossipDelegate{n}, log, n.ratelog)
	}
	if err != nil {
		return nil, err
	}
	if ma, ok := n.ml.(interface{ LocalAddr() string }); ok {
		n.setOwnGossip(ma.LocalAddr())
	}

	// A node without seeds founds its cluster: joined before New returns,
	// not once joinLoop's goroutine first runs (a request in between was
	// refused as not joined: node TestLimitsFullDisk, CI 12-08).
	if len(cfg.Join) == 0 {
		n.joined.Store(true)
	}
	n.goFunc(n.persistLoop)
	n.goFunc(n.joinLoop)
	n.goFunc(n.forgetLoop)
	n.startRingChange()
	n.hints.Start(n.ctx)
	n.ae.Start(n.ctx)
	if n.httpSrv != nil {
		n.serveFronts()
	}
	log.Info("node started", "http", n.HTTPAddr(), "rpc", n.tr.LocalAddr(), "gossip", n.GossipAddr(),
		"data_dir", cfg.DataDir, "ring_members", n.Ring().Len())
	return n, nil
}

// goFunc runs f in a goroutine that Close waits for.
func (n *Node) goFunc(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

func (n *Node) openStore() error {
	o := store.DefaultOptions(n.cfg.DataDir)
	if n.cfg.DataDir == "" {
		o = store.DefaultOptions("")
		o.InMemory = true // the store lowers its value limit to what badger holds in memory
	} else {
		// A merged set may reach the merge cap; the record's envelope and
		// the largest context (about 280 KiB) fit in the rest.
		o.MaxValueSize = siblings.DefaultMergeBytes + 512<<10
	}
	o.Sync = n.cfg.Sync
	if n.cfg.Limits.MinFreeDisk > 0 {
		o.MinFreeBytes = n.cfg.Limits.MinFreeDisk
	}
	o.CacheSize = n.cfg.CacheSize
	if s := n.cfg.Limits.Store; s.MemTableSize > 0 {
		o.MemTableSize, o.NumMemtables, o.BlockCacheSize = s.MemTableSize, s.NumMemtables, s.BlockCacheSize
	}
	o.Logger = n.log.With("component", "store")
	o.Now = n.now
	st, err := store.Open(o)
	if err != nil {
		return fmt.Errorf("open store in %q: %w", n.cfg.DataDir, err)
	}
	n.st = st

	n.dir, err = replica.OpenDir(st, n.cfg.NodeID)
	if err != nil {
		return fmt.Errorf("data directory %q: %w", n.cfg.DataDir, err)
	}
	if n.dir.Unclean {
		n.log.Warn("previous run did not shut down cleanly: new writes use fresh epochs")
	}
	if n.dir.Deferred {
		n.log.Error("started on a full disk: the data directory's own start-up writes are deferred; every write is refused until they are done, by itself once space is freed")
	}
	return nil
}

// HTTPAddr is the client API's bound address.
func (n *Node) HTTPAddr() string {
	if n.httpLn == nil {
		return ""
	}
	return n.httpLn.Addr().String()
}

// RPCAddr is the node-to-node RPC's address: the bound one, or the
// advertised one when Config.Advertise is set and the port was given.
func (n *Node) RPCAddr() string { return n.tr.LocalAddr() }

// GossipAddr is the bound gossip address ("" with a scripted membership).
func (n *Node) GossipAddr() string {
	if ma, ok := n.ml.(interface{ LocalAddr() string }); ok {
		return ma.LocalAddr()
	}
	return ""
}

// ID is the node's id.
func (n *Node) ID() string { return n.cfg.NodeID }

// Done is closed when the node has shut down.
func (n *Node) Done() <-chan struct{} { return n.closed }

// crash stops the node the way a crash would, for tests
// (nodetest.Cluster.Crash, through nodehook.Crash): no drain of client requests, no gossip leave,
// no final persist of the ring state and no clean-shutdown mark in the
// store, so the next start on this data directory takes the unclean-start
// path (fresh epochs, as after a kill -9). Goroutines are still stopped
// and the store closed, so the directory can be reopened in this process;
// what a kill -9 would leave on disk is the same (the store's write-ahead
// log is already in the kernel's page cache).
func (n *Node) crash() error {
	n.crashed.Store(true)
	return n.Close()
}

func init() { nodehook.Crash = func(n any) error { return n.(*Node).crash() } }

// Close shuts the node down gracefully, in order: stop accepting client
// requests and drain those in flight (up to ShutdownTimeout), leave gossip,
// stop background loops, close the transport, wait for every goroutine,
// mark the store cleanly closed and close it. Idempotent; later calls return
// the first call's result.
func (n *Node) Close() error {
	n.once.Do(func() {
		n.closing.Store(true)
		var errs []error
		crash := n.crashed.Load()
		dctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
		if crash {
			cancel() // a crash drains nothing
		}
		if n.httpSrv != nil && crash {
			_ = n.httpSrv.Close()
		} else if n.httpSrv != nil {
			if err := n.httpSrv.Shutdown(dctx); err != nil {
				errs = append(errs, fmt.Errorf("http shutdown: %w", err))
			}
		}
		if n.httpLn != nil {
			// Shutdown closes only listeners Serve saw: a start that failed
			// before serveFronts must still release the port.
			_ = n.httpLn.Close()
		}
		if n.resp != nil {
			n.resp.Close(dctx)
		}
		cancel()
		if n.ml != nil && !crash {
			if err := n.ml.Leave(time.Second); err != nil {
				n.log.Debug("leave gossip", "err", err)
			}
		}
		if n.ml != nil {
			if err := n.ml.Shutdown(); err != nil {
				errs = append(errs, fmt.Errorf("gossip shutdown: %w", err))
			}
		}
		n.cancel()
		if n.coord != nil {
			n.coord.Close()
		}
		if n.tr != nil {
			if err := n.tr.Close(); err != nil {
				errs = append(errs, fmt.Errorf("transport close: %w", err))
			}
		}
		if n.hints != nil {
			n.hints.Close()
		}
		if n.ae != nil {
			n.ae.Close()
		}
		n.wg.Wait()
		if n.st != nil {
			// A start that failed before the state was loaded (say, a data
			// directory of another node) must not write to that store.
			if n.stateLoaded && !crash {
				n.persistState()
				if err := replica.CloseDir(n.st); err != nil {
					errs = append(errs, err)
				}
			}
			if err := n.st.Close(); err != nil {
				errs = append(errs, fmt.Errorf("store close: %w", err))
			}
		}
		n.err = errors.Join(errs...)
		close(n.closed)
		n.log.Info("node stopped")
	})
	return n.err
}

func (n *Node) liveOthers() int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return len(n.liveLocked()) - 1
}

// forgetLoop drops the transport's connections to peers that gossip
// declared dead, so calls to them fail at once instead of waiting on a
// connection to a vanished host until their deadline.
func (n *Node) forgetLoop() {
	f, ok := n.tr.(interface{ Forget(addr string) })
	if !ok {
		return
	}
	for {
		select {
		case <-n.ctx.Done():
			return
		case id := <-n.deadCh:
			if addr, ok := n.rpcAddr(id); ok {
				f.Forget(addr)
			}
		}
	}
}
