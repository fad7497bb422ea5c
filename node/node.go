package node

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/transport"
)

// Node is one running peer. Create it with New; stop it with Close.
type Node struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	st    *store.Store
	ep    *epochs
	rep   *replica
	coord *quorum.Coordinator
	tr    transport.Transport
	ml    Membership

	// mu guards state and peers; ring is rebuilt from state on change.
	mu    sync.RWMutex
	state ClusterState
	peers map[string]Peer
	ring  atomic.Pointer[ring.Ring]

	persistCh chan struct{}
	// incarnation identifies this data directory in the ring state.
	incarnation uint64
	// stateLoaded is set once the ring state was read from the store.
	stateLoaded bool
	ctxKey      []byte      // signs client contexts (context.go)
	deadCh      chan string // ids of peers gossip declared dead, for forgetLoop

	httpLn  net.Listener
	httpSrv *http.Server

	metrics *metrics
	hints   *hintManager
	ae      *antiEntropy
	resp    *respServer

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
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("node", cfg.NodeID)
	n = &Node{
		ctxKey:    contextKey(cfg.Secret),
		cfg:       cfg,
		log:       log,
		now:       cfg.Now,
		peers:     make(map[string]Peer),
		persistCh: make(chan struct{}, 1),
		deadCh:    make(chan string, 64),
		closed:    make(chan struct{}),
	}
	if n.now == nil {
		n.now = time.Now
	}
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

	if err := n.openStore(); err != nil {
		return nil, err
	}
	if err := n.loadState(); err != nil {
		return nil, err
	}
	n.stateLoaded = true
	n.rep = &replica{self: cfg.NodeID, st: n.st, ep: n.ep, sync: cfg.Sync}
	n.coord, err = quorum.New(quorum.Config{
		Self:           ring.NodeID(cfg.NodeID),
		Membership:     n,
		Replicas:       replicas{n},
		Defaults:       cfg.Defaults,
		MaxN:           cfg.MaxN,
		ReadRepairWait: cfg.ReadRepairWait,
		Now:            n.now,
		OnReadRepair:   n.metrics.onReadRepair,
		Logger:         log,
	})
	if err != nil {
		return nil, err
	}
	if n.hints, err = newHintManager(n); err != nil {
		return nil, err
	}
	if n.ae, err = newAntiEntropy(n); err != nil {
		return nil, err
	}

	if cfg.NewTransport != nil {
		n.tr, err = cfg.NewTransport(n)
	} else {
		tc := transport.DefaultConfig()
		tc.NodeID = cfg.NodeID
		tc.ListenAddr = cfg.RPCAddr
		tc.Secret = []byte(cfg.Secret)
		tc.Handler = n
		tc.Logger = log.With("component", "transport")
		n.tr, err = transport.Listen(tc)
	}
	if err != nil {
		return nil, fmt.Errorf("start rpc on %s: %w", cfg.RPCAddr, err)
	}
	if cfg.WrapTransport != nil {
		n.tr = cfg.WrapTransport(n.tr)
	}
	if cfg.Secret == "" {
		log.Warn("no cluster secret: node-to-node RPC is unauthenticated and gossip unencrypted")
	}

	if err := n.startHTTP(); err != nil {
		return nil, err
	}
	if cfg.RESPAddr != "" {
		if err := n.startRESP(); err != nil {
			return nil, err
		}
	}
	// Publish our own record (addresses now known) before gossip starts.
	n.refreshSelf()

	if cfg.NewMembership != nil {
		n.ml, err = cfg.NewMembership(n)
	} else {
		n.ml, err = newMemberlist(cfg, n, log)
	}
	if err != nil {
		return nil, err
	}
	if ma, ok := n.ml.(interface{ LocalAddr() string }); ok {
		n.mu.Lock()
		r := n.state.Members[cfg.NodeID]
		r.Gossip = ma.LocalAddr()
		n.state.Members[cfg.NodeID] = r
		n.mu.Unlock()
	}

	n.goFunc(n.persistLoop)
	n.goFunc(n.joinLoop)
	n.goFunc(n.forgetLoop)
	n.hints.start()
	n.ae.start()
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
		o.MaxValueSize = maxSetBytes + 64<<10
	}
	o.Sync = n.cfg.Sync
	o.CacheSize = n.cfg.CacheSize
	o.Logger = n.log.With("component", "store")
	o.Now = n.now
	st, err := store.Open(o)
	if err != nil {
		return fmt.Errorf("open store in %q: %w", n.cfg.DataDir, err)
	}
	n.st = st

	// A data directory belongs to one node id: starting another node on it
	// would mix two nodes' records and hints.
	id, err := st.GetMeta(metaNodeID)
	fresh := errors.Is(err, store.ErrNotFound)
	switch {
	case fresh:
		if err := st.PutMeta(metaNodeID, []byte(n.cfg.NodeID)); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("read node id from store: %w", err)
	case string(id) != n.cfg.NodeID:
		return fmt.Errorf("data directory %q belongs to node %q, not %q", n.cfg.DataDir, id, n.cfg.NodeID)
	}
	clean, err := st.GetMeta(metaClean)
	unclean := !fresh && (err != nil || len(clean) != 1 || clean[0] != 1)
	if unclean {
		n.log.Warn("previous run did not shut down cleanly: new writes use fresh epochs")
	}
	if err := st.PutMeta(metaClean, []byte{0}); err != nil {
		return err
	}
	var rb [8]byte
	if _, err := rand.Read(rb[:]); err != nil {
		return err
	}
	if n.incarnation, err = loadIncarnation(st, fresh); err != nil {
		return err
	}
	n.ep, err = openEpochs(st, binary.BigEndian.Uint64(rb[:]), unclean)
	return err
}

// HTTPAddr is the client API's bound address.
func (n *Node) HTTPAddr() string {
	if n.httpLn == nil {
		return ""
	}
	return n.httpLn.Addr().String()
}

// RPCAddr is the node-to-node RPC's bound address.
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

// Store exposes the node's store to tests in this module (nodetest).
func (n *Node) Store() *store.Store { return n.st }

// Coordinator exposes the node's coordinator (nodetest, RESP).
func (n *Node) Coordinator() *quorum.Coordinator { return n.coord }

// Done is closed when the node has shut down.
func (n *Node) Done() <-chan struct{} { return n.closed }

// Crash stops the node the way a crash would, for tests
// (nodetest.Cluster.Crash): no drain of client requests, no gossip leave,
// no final persist of the ring state and no clean-shutdown mark in the
// store, so the next start on this data directory takes the unclean-start
// path (fresh epochs, as after a kill -9). Goroutines are still stopped
// and the store closed, so the directory can be reopened in this process;
// what a kill -9 would leave on disk is the same (the store's write-ahead
// log is already in the kernel's page cache).
func (n *Node) Crash() error {
	n.crashed.Store(true)
	return n.Close()
}

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
		if n.resp != nil {
			n.resp.close(dctx)
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
		n.wg.Wait()
		if n.st != nil {
			// A start that failed before the state was loaded (say, a data
			// directory of another node) must not write to that store.
			if n.stateLoaded && !crash {
				n.persistState()
				if err := n.st.PutMeta(metaClean, []byte{1}); err != nil {
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

// joinLoop contacts the Join peers until one of them answers, so an agent
// started before its seeds joins when one appears. Knowing some other member
// is not enough: two agents whose seeds were not up yet could find each
// other and form a second cluster, which memberlist never merges by itself.
// After that, it keeps trying to reach ring members that gossip holds dead
// (as Serf's reconnect does), so a cluster split by a long partition, or a
// member restarted while others thought it dead, comes back together.
func (n *Node) joinLoop() {
	t := time.NewTimer(0)
	defer t.Stop()
	attempt := 0
	joined := len(n.cfg.Join) == 0
	reconnectEvery := max(5*time.Second, 10*n.cfg.JoinRetry)
	nextReconnect := time.Now().Add(reconnectEvery)
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		if !joined {
			cnt, err := n.ml.Join(n.cfg.Join)
			attempt++
			switch {
			case cnt > 0:
				joined = true
				n.log.Info("joined cluster", "contacted", cnt)
			default:
				lvl := slog.LevelDebug
				if attempt == 1 || attempt%10 == 0 {
					lvl = slog.LevelWarn
				}
				n.log.Log(n.ctx, lvl, "join: no seed answered yet, retrying", "seeds", n.cfg.Join, "err", err)
			}
		} else if time.Now().After(nextReconnect) {
			nextReconnect = time.Now().Add(reconnectEvery)
			if addrs := n.deadMemberGossipAddrs(); len(addrs) > 0 {
				if cnt, _ := n.ml.Join(addrs); cnt > 0 {
					n.log.Info("reconnected to members gossip held dead", "contacted", cnt)
				}
			}
		}
		t.Reset(n.cfg.JoinRetry)
	}
}

// deadMemberGossipAddrs lists the gossip addresses of ring members that
// gossip does not see alive.
func (n *Node) deadMemberGossipAddrs() []string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	var out []string
	for id, r := range n.state.Members {
		if id == n.cfg.NodeID || r.Left || r.Gossip == "" {
			continue
		}
		if p, ok := n.peers[id]; ok && (p.State == PeerAlive || p.State == PeerSuspect) {
			continue
		}
		out = append(out, r.Gossip)
	}
	return out
}

func (n *Node) liveOthers() int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	c := 0
	for id, p := range n.peers {
		if id != n.cfg.NodeID && (p.State == PeerAlive || p.State == PeerSuspect) {
			c++
		}
	}
	return c
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
