package transport

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumkv/quorumkv/connlimit"
	"github.com/quorumkv/quorumkv/internal/ratelog"
)

// keepAlive makes the kernel probe idle connections, so that one to a peer
// that vanished without a FIN or RST (power loss, cable) is closed after
// about Idle + Count*Interval = 11s instead of Linux's default of minutes.
// It does not help while a request is unacknowledged; see Forget.
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 2 * time.Second, Count: 3}

// TCP is the production Transport: persistent, multiplexed, authenticated
// TCP connections. Its methods are safe for concurrent use.
type TCP struct {
	cfg  Config
	log  *slog.Logger
	ln   net.Listener
	addr string

	ctx    context.Context // lifetime: ends in Close; parent of handler ctxs and dials
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the transport starts

	workers workerPool // runs request handlers

	gate gate             // connections in the handshake
	logs *ratelog.Limiter // connection-level warnings an attacker can provoke
	held budget           // bytes of frames in flight, all connections (MaxInflightBytes)
	rand io.Reader        // nonces and ephemeral keys; crypto/rand

	peersMu sync.RWMutex
	peers   map[string]*peer

	mu     sync.Mutex
	closed bool
	conns  map[*conn]struct{}
	stats  map[string]*peerCounters
	legacy int // live conns in version 1 with a secret (AcceptV1Peers)

	closeOnce sync.Once
	dials     atomic.Uint64 // dial attempts, for tests
	afterDial func()        // tests only: runs when a dial returns, before its result is taken
	noYield   atomic.Bool   // benchmarks only: writers skip the yield before a flush
}

var _ Transport = (*TCP)(nil)

// Listen validates cfg, binds cfg.ListenAddr and starts accepting
// connections. Call Close to stop.
//
// On error the *TCP is nil. Do not store that nil in a Transport variable
// before checking the error: an interface holding a nil *TCP is not nil.
// (The methods of a nil *TCP are harmless anyway: Close returns nil and
// Call fails with ErrClosed.) A port held by another process fails with an
// error that reads "address already in use" and matches
// syscall.EADDRINUSE.
func Listen(cfg Config) (*TCP, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	lc := net.ListenConfig{KeepAliveConfig: keepAlive}
	ln, err := lc.Listen(context.Background(), "tcp", cfg.ListenAddr)
	if err != nil {
		return nil, &listenError{addr: cfg.ListenAddr, err: err}
	}
	t := &TCP{
		cfg:   cfg,
		log:   orDiscard(cfg.Logger).With("node", cfg.NodeID),
		ln:    ln,
		addr:  cfg.AdvertiseAddr,
		gate:  gate{max: cfg.MaxHandshakes, perSource: cfg.MaxHandshakesPerSource},
		held:  budget{limit: int64(cfg.MaxInflightBytes)},
		rand:  rand.Reader,
		peers: make(map[string]*peer),
		conns: make(map[*conn]struct{}),
		stats: make(map[string]*peerCounters),
	}
	t.logs = ratelog.New(t.log, ratelog.DefaultEvery)
	if t.addr == "" {
		t.addr = ln.Addr().String()
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.workers.t = t
	t.wg.Add(1)
	go t.acceptLoop()
	if cfg.AcceptV1Peers {
		t.log.Warn("UPGRADE WINDOW: accept-v1-peers is on: this node also speaks transport protocol version 1 (frames UNENCRYPTED) to peers of the release before encryption; turn it off once every node is upgraded")
		t.wg.Add(1)
		go t.remindLegacy()
	}
	return t, nil
}

// LegacyPeers returns, sorted, the peers ("id at addr") with an open
// version 1 connection while AcceptV1Peers is on: the peers whose frames
// travel unencrypted. It is empty otherwise.
func (t *TCP) LegacyPeers() []string {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.legacy == 0 {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for c := range t.conns {
		if p := c.peerID + " at " + c.addr; c.legacy && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// remindLegacy repeats the upgrade-window warning while version 1
// connections are open.
func (t *TCP) remindLegacy() {
	defer t.wg.Done()
	every := t.cfg.legacyReminder
	if every <= 0 {
		every = LegacyReminder
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
			if peers := t.LegacyPeers(); len(peers) > 0 {
				t.log.Warn("UPGRADE WINDOW: connected to peers of the release before encryption over transport protocol version 1, frames UNENCRYPTED; turn accept-v1-peers off once every node is upgraded",
					"v1_peers", peers)
			}
		}
	}
}

// LocalAddr returns AdvertiseAddr, or the bound address when that is empty.
// It returns "" on a nil *TCP.
func (t *TCP) LocalAddr() string {
	if t == nil {
		return ""
	}
	return t.addr
}

// Call sends body to the node at addr and waits for the reply or ctx's end.
// It reuses a connection to addr, dialing one if needed (several calls wait
// for one dial). If ctx has a deadline, the remaining time travels with the
// request and bounds the handler's ctx. A call whose ctx ends is forgotten:
// a reply arriving later is dropped. Errors: ErrInvalidMethod,
// ErrFrameTooLarge, ErrUnreachable (possibly with ErrAuth or ErrConnLost),
// ErrClosed, ctx.Err(), or a *RemoteError from the handler.
func (t *TCP) Call(ctx context.Context, addr string, m Method, body []byte) ([]byte, error) {
	p, err := t.check(ctx, addr, m, body)
	if err != nil {
		return nil, err
	}
	c, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	return c.call(ctx, m, body)
}

// Go is Call's asynchronous form (AsyncCaller): it sends the request and
// returns, and done gets what Call would have returned, exactly once,
// possibly before Go returns. When a connection to addr is up and has a
// free slot (the common case) no goroutine waits for the call: done runs
// on the connection's reader goroutine (or on the one that found the
// connection lost or ctx ended), so it must be quick and must not block.
// Otherwise (a dial, a full connection) the call runs as Call in a
// goroutine of the transport's. body is not retained after Go returns.
//
// One difference from Call: a call whose ctx has a deadline is ended by
// its connection's one expiry timer, at the deadline, so a cancellation of
// ctx before then is seen only at the deadline (or the reply); a ctx
// without a deadline is watched for cancellation (context.AfterFunc).
// Callers whose calls outlive their request's answer (the coordinator's,
// under a deadline) lose nothing by it.
func (t *TCP) Go(ctx context.Context, addr string, m Method, body []byte, done func([]byte, error)) {
	t.GoTo(ctx, addr, m, body, doneFunc(done))
}

// GoTo is Go reporting to done.Complete (CompleterCaller): the caller's
// Completer is kept with the call, so a call costs the caller no closure.
func (t *TCP) GoTo(ctx context.Context, addr string, m Method, body []byte, done Completer) {
	p, err := t.check(ctx, addr, m, body)
	if err != nil {
		done.Complete(nil, err)
		return
	}
	if c := p.ready(); c != nil && c.start(ctx, m, body, done) {
		return
	}
	b := slices.Clone(body)
	if !t.goFunc(func() { done.Complete(t.Call(ctx, addr, m, b)) }) {
		done.Complete(nil, fmt.Errorf("call %s: %w", addr, ErrClosed))
	}
}

// check refuses a call that cannot be sent and returns the peer for addr.
func (t *TCP) check(ctx context.Context, addr string, m Method, body []byte) (*peer, error) {
	if t == nil {
		return nil, fmt.Errorf("call %s: %w", addr, ErrClosed)
	}
	if m == 0 {
		return nil, ErrInvalidMethod
	}
	if len(body) > t.cfg.MaxFrame-headerSize {
		return nil, fmt.Errorf("call %s: request of %d bytes, limit %d: %w", addr, len(body), t.cfg.MaxFrame-headerSize, ErrFrameTooLarge)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("call %s: %w", addr, err)
	}
	return t.peer(addr)
}

// Stats returns the traffic per peer address: the address we dial for our
// calls, and the address a peer advertised in its handshake for its calls
// to us (so both directions with one peer add up in one entry).
func (t *TCP) Stats() map[string]PeerStats {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]PeerStats, len(t.stats))
	for k, c := range t.stats {
		out[k] = PeerStats{
			BytesSent:      c.bytesSent.Load(),
			BytesReceived:  c.bytesRecv.Load(),
			FramesSent:     c.framesSent.Load(),
			FramesReceived: c.framesRecv.Load(),
			Batches:        c.batches.Load(),
			Writes:         c.writes.Load(),
			Reads:          c.reads.Load(),
		}
	}
	return out
}

// Forget closes every connection to addr, failing the calls pending on
// them with ErrConnLost, and clears its reconnect backoff; the next call
// dials afresh. A dial to addr in flight is aborted and its connection,
// should it still complete, closed unused: the calls waiting for it fail
// with ErrUnreachable (they were not sent). Call it when the failure detector declares the node at addr
// dead: a peer that vanished without closing its sockets otherwise keeps
// its connections open (and calls to it waiting for their deadlines) until
// TCP gives up. Connections the peer opened to us are closed too.
func (t *TCP) Forget(addr string) {
	if t == nil {
		return
	}
	t.peersMu.RLock()
	p := t.peers[addr]
	t.peersMu.RUnlock()
	if p != nil {
		p.mu.Lock()
		p.backoff, p.retryAt, p.lastErr = 0, time.Time{}, nil
		p.forgetDialLocked()
		p.mu.Unlock()
	}
	t.mu.Lock()
	var doomed []*conn
	for c := range t.conns {
		if c.addr == addr {
			doomed = append(doomed, c)
		}
	}
	t.mu.Unlock()
	for _, c := range doomed {
		c.fail(errForgotten)
	}
}

// errForgotten is the cause of connections closed by Forget.
var errForgotten = errors.New("forgotten: peer declared dead")

// Close stops the listener, closes every connection, fails calls in flight
// with ErrClosed, cancels the ctx of running handlers and waits for every
// goroutine the transport started, handlers included (so a handler that
// ignores its ctx delays Close). It is idempotent and always returns nil,
// also on a nil *TCP.
func (t *TCP) Close() error {
	if t == nil {
		return nil
	}
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.closed = true
		conns := make([]*conn, 0, len(t.conns))
		for c := range t.conns {
			conns = append(conns, c)
		}
		t.mu.Unlock()
		_ = t.ln.Close()
		// Connections first, so that handlers cancelled below find them dead
		// and send nothing.
		for _, c := range conns {
			c.fail(ErrClosed)
		}
		t.cancel()
		t.workers.stop()
		t.wg.Wait()
	})
	return nil
}

// peer returns the connection pool for addr, creating it on first use.
func (t *TCP) peer(addr string) (*peer, error) {
	t.peersMu.RLock()
	p := t.peers[addr]
	t.peersMu.RUnlock()
	if p != nil {
		return p, nil
	}
	if t.ctx.Err() != nil {
		return nil, fmt.Errorf("call %s: %w", addr, ErrClosed)
	}
	t.peersMu.Lock()
	defer t.peersMu.Unlock()
	if p = t.peers[addr]; p == nil {
		p = &peer{t: t, addr: addr}
		t.peers[addr] = p
	}
	return p, nil
}

// goFunc starts f in a goroutine counted by wg, unless the transport is
// closed. Use it from goroutines that are not themselves counted.
func (t *TCP) goFunc(f func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		f()
	}()
	return true
}

// counters returns the shared traffic counters for a peer address.
func (t *TCP) counters(key string) *peerCounters {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.stats[key]
	if c == nil {
		c = new(peerCounters)
		t.stats[key] = c
	}
	return c
}

// start registers an authenticated conn and starts its goroutines, or
// reports false if the transport closed meanwhile.
func (t *TCP) start(c *conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.conns[c] = struct{}{}
	if c.legacy {
		t.legacy++
		// Not rate-limited per source: a peer of the old release holds
		// ConnsPerPeer connections, and each one is worth a line.
		t.log.Warn("UPGRADE WINDOW: connection in transport protocol version 1 (release before encryption), frames UNENCRYPTED",
			"peer", c.addr, "peer_id", c.peerID, "v1_conns", t.legacy)
	}
	t.wg.Add(2)
	go c.readLoop()
	go c.writeLoop()
	return true
}

func (t *TCP) dropConn(c *conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.conns[c]; !ok {
		return
	}
	delete(t.conns, c)
	if c.legacy {
		t.legacy--
		if t.legacy == 0 && !t.closed {
			t.log.Info("no transport protocol version 1 connection open any more", "last_peer", c.addr, "last_peer_id", c.peerID)
		}
	}
}

// dial connects and authenticates one new connection to addr, unless ctx
// (the transport's lifetime, or shorter: Forget ends it) ends first.
func (t *TCP) dial(ctx context.Context, addr string) (*conn, error) {
	t.dials.Add(1)
	d := net.Dialer{Timeout: t.cfg.DialTimeout, KeepAliveConfig: keepAlive}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, t.dialErr(ctx, addr, err)
	}
	s, err := t.handshake(ctx, nc, addr, nil)
	if err != nil {
		_ = nc.Close()
		if ctx.Err() != nil {
			return nil, t.dialErr(ctx, addr, err)
		}
		t.logs.Warn("handshake failed", addr, "peer", addr, "op", "dial", "err", err)
		return nil, &unreachableError{addr: addr, cause: fmt.Errorf("handshake: %w", err)}
	}
	c := newConn(t, nc, true, s, addr, addr)
	if !t.start(c) {
		_ = nc.Close()
		return nil, fmt.Errorf("dial %s: %w", addr, ErrClosed)
	}
	return c, nil
}

// dialErr is the error of a dial to addr that failed with err: ErrClosed
// if the transport closed, the peer forgotten if ctx alone ended, else
// unreachable for err.
func (t *TCP) dialErr(ctx context.Context, addr string, err error) error {
	switch {
	case t.ctx.Err() != nil:
		return fmt.Errorf("dial %s: %w", addr, ErrClosed)
	case ctx.Err() != nil:
		return &unreachableError{addr: addr, cause: errForgotten}
	}
	return &unreachableError{addr: addr, cause: err}
}

// handshake runs either side of the handshake under HandshakeTimeout, and
// aborts it when ctx ends (the transport's lifetime, or a dial's). A
// non-empty addr means we dialed
// it (client side); gotHello is the server side's hook (see
// handshaker.server). On the server side the accept loop has set the
// deadline already, so that the gate may shorten it at any time.
func (t *TCP) handshake(ctx context.Context, nc net.Conn, addr string, gotHello func()) (session, error) {
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if addr != "" {
		if err := nc.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout)); err != nil {
			return session{}, err
		}
	}
	hs := handshaker{secret: t.cfg.Secret, id: t.cfg.NodeID, addr: t.addr, maxFrame: t.cfg.MaxFrame, rand: t.rand, acceptV1: t.cfg.AcceptV1Peers}
	var s session
	var err error
	if addr != "" {
		s, err = hs.client(nc, addr)
	} else {
		s, err = hs.server(nc, gotHello)
	}
	if err != nil {
		return s, err
	}
	return s, nc.SetDeadline(time.Time{})
}

func (t *TCP) acceptLoop() {
	defer t.wg.Done()
	for {
		nc, err := connlimit.Accept(t.ctx, t.ln, func(err error, retryIn time.Duration) {
			t.logs.Log(slog.LevelError, "accept failed", "", "op", "accept", "err", err, "retry_in", retryIn)
		})
		if err != nil {
			return // closed
		}
		src := ratelog.Source(nc.RemoteAddr())
		if err := nc.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout)); err != nil {
			_ = nc.Close()
			continue
		}
		e := t.gate.admit(nc, src)
		if e == nil {
			t.logs.Warn("handshake slots full of connections mid-handshake; refusing a connection", src, "peer", nc.RemoteAddr().String())
			_ = nc.Close()
			continue
		}
		t.wg.Add(1) // safe: this goroutine is itself counted
		go t.accept(nc, e)
	}
}

// accept authenticates an incoming connection and starts serving it.
func (t *TCP) accept(nc net.Conn, e *gateEntry) {
	defer t.wg.Done()
	s, err := t.handshake(t.ctx, nc, "", func() { t.gate.heard(e) })
	evicted, heard := t.gate.done(e)
	if err != nil {
		if evicted && !heard {
			abortClose(nc)
		} else {
			_ = nc.Close()
		}
		switch {
		case t.ctx.Err() != nil:
		case evicted:
			t.logs.Warn("unauthenticated connection evicted to make room for a newer one", e.source,
				"peer", nc.RemoteAddr().String(), "op", "accept")
		default:
			t.logs.Warn("handshake failed", e.source, "peer", nc.RemoteAddr().String(), "op", "accept", "err", err)
		}
		return
	}
	key := s.peer.addr
	if key == "" {
		key = nc.RemoteAddr().String()
	}
	if !t.start(newConn(t, nc, false, s, key, e.source)) {
		_ = nc.Close()
	}
}
