package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumkv/quorumkv/clock"
)

// bufSize is the size of each connection's read and write buffer. A bigger
// write buffer lets more queued frames share one write syscall.
const bufSize = 32 << 10

// conn is one authenticated connection. A conn we dialed carries our calls
// (client); one we accepted carries the peer's calls to our handler. One
// goroutine reads and dispatches, one drains the send queue.
type conn struct {
	t       *TCP
	nc      net.Conn
	client  bool
	addr    string // the peer's address: the one we dialed, or the one it advertised
	source  string // who to blame in rate-limited logs: the dialed address, or the remote IP
	peerID  string
	legacy  bool // version 1 with a secret: a peer of the release before encryption (AcceptV1Peers)
	maxBody int  // largest body we may send: the smaller MaxFrame, less the header
	maxRecv int  // our MaxFrame: larger incoming frames close the conn
	stats   *peerCounters
	held    budget // bytes in flight on this conn (MaxConnInflightBytes); serving side

	// Calling side, for peer.pickLocked: the bytes of request frames
	// queued for the writer and not yet written, and whether the reader is
	// in the body of a reply larger than bufSize. Either makes the conn
	// busy: a call sent on it would wait behind those bytes.
	queued  atomic.Int64
	bigRead atomic.Bool

	br      *bufio.Reader // reader goroutine only
	rdArmed bool          // reader goroutine only: a read deadline is set
	bw      *bufio.Writer // writer goroutine only

	// lastBudget is the handler ctx of the last request read with a
	// budget; reader goroutine only (budgetCtxFor).
	lastBudget *budgetCtx
	ctxs       budgetCtxSlab // reader goroutine only: where budgetCtxFor takes new ones

	sendq chan *frameBuf // frames for the writer; it returns them to the pool
	slots chan struct{}  // MaxInflight tokens: pending calls, or running handlers

	failOnce sync.Once
	done     chan struct{} // closed when the conn is dead
	cause    error         // why it died; written before done is closed

	mu      sync.Mutex
	dead    bool         // guarded by mu; no new pending entries once set
	pending pendingTable // client: calls waiting for a reply
	nextID  uint64
	// expiry fires at expiryAt, the earliest deadline of the asynchronous
	// calls pending when it was set (zero: not set); guarded by mu.
	expiry   *time.Timer
	expiryAt time.Time

	// Serving side: handlers' ctx, cancelled when the conn dies.
	ctx    context.Context
	cancel context.CancelFunc
}

// call is a caller waiting for its reply. Whoever removes it from the
// pending map (the reader, fail, or the caller giving up) is the only one
// who may deliver its result (deliver), so ch never blocks and calls can be
// pooled.
//
// An asynchronous call (TCP.Go) has done instead of a goroutine waiting on
// ch: deliver hands it the result and releases its slot. A call whose ctx
// has a deadline is ended by the conn's expiry timer (expireDue) when the
// deadline passes, without a watch of its own: one timer per conn rather
// than an allocation per call; a call without one has stop, the watch on
// its ctx (expire). These fields are set under mu, before the call is
// visible in the pending map, and read by whoever removed it.
type call struct {
	ch   chan result
	done Completer
	stop func() bool
	// An asynchronous call with a deadline: the conn's expiry timer ends
	// it then (expireDue), or earlier if ctx was cancelled by then.
	ctx      context.Context
	deadline time.Time
}

type result struct {
	body []byte
	err  error
}

var callPool = sync.Pool{New: func() any { return &call{ch: make(chan result, 1)} }}

func newConn(t *TCP, nc net.Conn, client bool, s session, key, source string) *conn {
	c := &conn{
		t:       t,
		nc:      nc,
		client:  client,
		addr:    key,
		source:  source,
		peerID:  s.peer.id,
		legacy:  s.version == versionPlain && len(t.cfg.Secret) > 0,
		maxBody: min(s.peer.maxFrame, t.cfg.MaxFrame) - headerSize,
		maxRecv: t.cfg.MaxFrame,
		stats:   t.counters(key),
		held:    budget{limit: int64(t.cfg.MaxConnInflightBytes)},
		sendq:   make(chan *frameBuf, t.cfg.MaxInflight),
		slots:   make(chan struct{}, t.cfg.MaxInflight),
		done:    make(chan struct{}),
	}
	counted := countingConn{nc, &c.stats.reads, &c.stats.writes}
	var r io.Reader = counted
	var w io.Writer = counted
	if s.recv != nil {
		r = newSealedReader(r, s.recv, c.armRead)
		w = newSealedWriter(w, s.send)
	}
	c.br = bufio.NewReaderSize(r, bufSize)
	c.bw = bufio.NewWriterSize(w, bufSize)
	if !client {
		c.ctx, c.cancel = context.WithCancel(t.ctx)
	}
	return c
}

// busy reports whether a call sent on c now would wait behind a large
// frame, or behind more queued bytes than one write takes, or c is at
// half its MaxInflight calls. Calling side.
func (c *conn) busy() bool {
	return c.queued.Load() > bufSize || c.bigRead.Load() || 2*len(c.slots) > cap(c.slots)
}

func (c *conn) isDead() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// fail kills the conn once: it closes the socket, cancels running
// handlers, and hands every pending call an error. cause ErrClosed means
// the local transport is closing.
func (c *conn) fail(cause error) {
	c.failOnce.Do(func() {
		c.mu.Lock()
		c.dead = true
		pend := c.pending.takeIf(func(*call) bool { return true }, nil)
		if c.expiry != nil {
			c.expiry.Stop()
		}
		c.cause = cause
		c.mu.Unlock()
		close(c.done)
		_ = c.nc.Close()
		if c.cancel != nil {
			c.cancel()
		}
		if len(pend) > 0 {
			err := c.lostErr()
			for _, cl := range pend {
				c.deliver(cl, result{err: err})
			}
		}
		c.t.dropConn(c)
		switch {
		case errors.Is(cause, ErrClosed):
		case errors.Is(cause, io.EOF), errors.Is(cause, net.ErrClosed):
			c.t.logs.Log(slog.LevelDebug, "connection closed", c.source, "peer", c.addr, "peer_id", c.peerID, "err", cause)
		default:
			c.t.logs.Warn("closing connection", c.source, "peer", c.addr, "peer_id", c.peerID, "err", cause)
		}
	})
}

// lostErr is the error for calls the dead conn leaves behind. Call it only
// after done is closed.
func (c *conn) lostErr() error {
	if errors.Is(c.cause, ErrClosed) {
		return fmt.Errorf("call %s: %w", c.addr, ErrClosed)
	}
	return &connLostError{addr: c.addr, cause: c.cause}
}

// call sends one request on c and waits for its reply.
func (c *conn) call(ctx context.Context, m Method, body []byte) ([]byte, error) {
	if len(body) > c.maxBody {
		return nil, fmt.Errorf("call %s: request of %d bytes, peer limit %d: %w", c.addr, len(body), c.maxBody, ErrFrameTooLarge)
	}
	select {
	case c.slots <- struct{}{}:
	default:
		select {
		case c.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, fmt.Errorf("call %s: waiting for a free slot: %w", c.addr, ctx.Err())
		case <-c.done:
			return nil, c.lostErr()
		}
	}
	defer func() { <-c.slots }()

	cl := callPool.Get().(*call)
	id, fb, ok := c.register(ctx, cl, m, body)
	if !ok {
		callPool.Put(cl)
		return nil, c.lostErr()
	}
	select {
	case c.sendq <- fb: // the common case, without the selectgo below
	default:
		select {
		case c.sendq <- fb:
		case <-ctx.Done():
			c.freeFrame(fb)
			return c.abandon(ctx, id, cl)
		case <-c.done:
			// fail took the pending entry and is handing it an error.
			c.freeFrame(fb)
		}
	}
	select {
	case r := <-cl.ch:
		callPool.Put(cl)
		return r.body, r.err
	case <-ctx.Done():
		return c.abandon(ctx, id, cl)
	}
}

// abandon removes a call whose ctx ended. If the reader (or fail) got to
// the entry first, the reply is already on its way and is returned instead:
// it is as good as the caller could wish for, and waiting is brief.
func (c *conn) abandon(ctx context.Context, id uint64, cl *call) ([]byte, error) {
	if _, mine := c.take(id); mine {
		callPool.Put(cl)
		return nil, fmt.Errorf("call %s: %w", c.addr, ctx.Err())
	}
	r := <-cl.ch
	callPool.Put(cl)
	return r.body, r.err
}

// start is call's asynchronous form (TCP.Go): it queues the request and
// returns; done gets the reply, or the conn's loss, or ctx's end (expire),
// exactly once. It returns false, having done nothing, when the call would
// have to wait for a slot: the caller then makes a blocking call in a
// goroutine of its own.
func (c *conn) start(ctx context.Context, m Method, body []byte, done Completer) bool {
	if len(body) > c.maxBody {
		done.Complete(nil, fmt.Errorf("call %s: request of %d bytes, peer limit %d: %w", c.addr, len(body), c.maxBody, ErrFrameTooLarge))
		return true
	}
	select {
	case c.slots <- struct{}{}:
	default:
		return false
	}
	cl := callPool.Get().(*call)
	cl.done = done
	_, fb, ok := c.register(ctx, cl, m, body)
	if !ok {
		cl.done = nil
		callPool.Put(cl)
		<-c.slots
		done.Complete(nil, c.lostErr())
		return true
	}
	// A non-blocking send first, without a select on done: the common
	// case, and the cheaper one (no selectgo).
	select {
	case c.sendq <- fb:
		return true
	default:
	}
	if c.isDead() {
		// fail took the pending entry and delivered its error.
		c.freeFrame(fb)
		return true
	}
	// The queue is full (frames of abandoned calls hold no slot): wait in
	// a goroutine, as call would.
	if !c.t.goFunc(func() {
		select {
		case c.sendq <- fb:
		case <-ctx.Done(): // expire delivers the error
			c.freeFrame(fb)
		case <-c.done:
			c.freeFrame(fb)
		}
	}) {
		c.freeFrame(fb) // the transport is closing: it fails the conn
	}
	return true
}

// register enters cl in the pending map and builds its request frame; it
// returns false, entering nothing, if the conn is dead. An asynchronous
// call (cl.done set) also gets its end: the conn's expiry timer for a ctx
// with a deadline, else a watch on ctx.
func (c *conn) register(ctx context.Context, cl *call, m Method, body []byte) (uint64, *frameBuf, bool) {
	var budget uint32
	dl, hasDeadline := ctx.Deadline()
	if hasDeadline {
		budget = budgetMillis(time.Until(dl))
	}
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return 0, nil, false
	}
	id := c.pending.add(&c.nextID, cl)
	switch {
	case cl.done == nil:
	case hasDeadline:
		cl.ctx, cl.deadline = ctx, dl
		if c.expiryAt.IsZero() || dl.Before(c.expiryAt) {
			c.armExpiryLocked(dl)
		}
	default:
		cl.stop = context.AfterFunc(ctx, func() { c.expire(ctx, id) })
	}
	c.mu.Unlock()
	fb := getBuf(frameOverhead + len(body))
	putHeader(fb.b, header{kind: kindRequest, method: m, id: id, budget: budget}, len(body))
	copy(fb.b[frameOverhead:], body)
	fb.queued = int64(len(fb.b))
	c.queued.Add(fb.queued)
	return id, fb, true
}

// expire ends asynchronous call id, whose ctx ended, unless its reply (or
// the conn's loss) was delivered first.
func (c *conn) expire(ctx context.Context, id uint64) {
	if cl, mine := c.take(id); mine {
		c.deliver(cl, result{err: fmt.Errorf("call %s: %w", c.addr, ctx.Err())})
	}
}

// take removes call id from the pending map, if it is still there: whoever
// takes it delivers its result.
func (c *conn) take(id uint64) (*call, bool) {
	c.mu.Lock()
	cl := c.pending.take(id)
	c.mu.Unlock()
	return cl, cl != nil
}

// armExpiryLocked sets the expiry timer to fire at at.
func (c *conn) armExpiryLocked(at time.Time) {
	c.expiryAt = at
	clock.Rearm(&c.expiry, time.Until(at), c.expireDue)
}

// expireDue ends the asynchronous calls whose deadline has passed (or
// whose ctx ended before it) and sets the timer for the earliest deadline
// left.
func (c *conn) expireDue() {
	now := time.Now()
	c.mu.Lock()
	var next time.Time
	due := c.pending.takeIf(func(cl *call) bool {
		switch {
		case cl.done == nil || cl.deadline.IsZero():
		case cl.ctx.Err() != nil || !now.Before(cl.deadline):
			return true
		case next.IsZero() || cl.deadline.Before(next):
			next = cl.deadline
		}
		return false
	}, nil)
	c.expiryAt = time.Time{}
	if !next.IsZero() && !c.dead {
		c.armExpiryLocked(next)
	}
	c.mu.Unlock()
	for _, cl := range due {
		err := cl.ctx.Err()
		if err == nil { // our timer ran before ctx's own
			err = context.DeadlineExceeded
		}
		c.deliver(cl, result{err: fmt.Errorf("call %s: %w", c.addr, err)})
	}
}

// deliver hands r to the caller of cl, which the caller of deliver has
// just removed from the pending map.
func (c *conn) deliver(cl *call, r result) {
	if cl.done == nil {
		cl.ch <- r
		return
	}
	done, stop := cl.done, cl.stop
	cl.done, cl.stop, cl.ctx, cl.deadline = nil, nil, nil, time.Time{}
	callPool.Put(cl)
	if stop != nil {
		stop()
	}
	<-c.slots
	done.Complete(r.body, r.err)
}

// budgetMillis turns the time left before a deadline into the request's
// budget field, rounding up so that a budget is never 0 (none) by accident.
func budgetMillis(d time.Duration) uint32 {
	if d <= 0 {
		return 1
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	return uint32(min(ms, 1<<32-1))
}

// writeLoop drains the send queue into the buffered writer and flushes
// only when the queue is empty, so frames queued together share a syscall.
// Before a flush it yields once when more frames may be about to come
// (mayCoalesce), so that they join the batch.
func (c *conn) writeLoop() {
	defer c.t.wg.Done()
	defer c.drain()
	var last uint64 // frames in the previous batch
	for {
		var fb *frameBuf
		select {
		case fb = <-c.sendq:
		case <-c.done:
			return
		}
		if err := c.nc.SetWriteDeadline(time.Now().Add(c.t.cfg.IOTimeout)); err != nil {
			c.freeFrame(fb)
			c.fail(fmt.Errorf("set write deadline: %w", err))
			return
		}
		var bytes, frames uint64
		yielded := false
		for fb != nil {
			_, err := c.bw.Write(fb.b)
			bytes += uint64(len(fb.b))
			frames++
			c.freeFrame(fb)
			if err != nil {
				c.fail(fmt.Errorf("write: %w", err))
				return
			}
			select {
			case fb = <-c.sendq:
			default:
				fb = nil
			}
			if fb == nil && !yielded && !c.t.noYield.Load() && c.mayCoalesce(frames, last) {
				// Let callers and handlers that are ready to run queue their
				// frames before this batch goes out: under load this turns a
				// syscall per frame into one per batch. With nothing else
				// runnable, Gosched returns at once.
				yielded = true
				runtime.Gosched()
				select {
				case fb = <-c.sendq:
				default:
				}
			}
		}
		// Count before the flush, so a reply can never be seen before its
		// request was counted.
		c.stats.bytesSent.Add(bytes)
		c.stats.framesSent.Add(frames)
		c.stats.batches.Add(1)
		last = frames
		if err := c.bw.Flush(); err != nil {
			c.fail(fmt.Errorf("write: %w", err))
			return
		}
	}
}

// mayCoalesce reports whether another frame may be queued soon behind the
// batch of frames the writer holds, so that a yield before the flush can
// pay: more calls in flight (or, serving, handlers running) than frames in
// the batch, or a previous batch of more than one frame. A lone call's
// frame goes out at once instead: with nothing to wait for, the yield
// only lets other goroutines (the coordinator's local commit, the store's
// writer) run before the request leaves (issue 16). Serving, the reader
// holds one slot while it waits for the next request.
func (c *conn) mayCoalesce(frames, last uint64) bool {
	inflight := uint64(len(c.slots))
	if !c.client && inflight > 0 {
		inflight--
	}
	return inflight > frames || last > 1
}

// enqueue hands a frame to the writer, or drops it if the conn is dead.
func (c *conn) enqueue(fb *frameBuf) {
	select {
	case c.sendq <- fb: // the common case, without a select on done
	default:
		select {
		case c.sendq <- fb:
		case <-c.done:
			c.freeFrame(fb)
			return
		}
	}
	if c.isDead() {
		// The writer may have drained the queue before our frame landed:
		// drain again, so that no frame's budget is held forever.
		c.drain()
	}
}

// drain frees the frames left in the send queue of a dead conn.
func (c *conn) drain() {
	for {
		select {
		case fb := <-c.sendq:
			c.freeFrame(fb)
		default:
			return
		}
	}
}

// charge counts n bytes of a reply against the conn's and the node's
// budgets without waiting (see budget).
func (c *conn) charge(fb *frameBuf) {
	n := int64(len(fb.b))
	fb.charge = n
	c.held.add(n)
	c.t.held.add(n)
	c.t.cfg.Budget.Force(n)
}

// uncharge returns n bytes to the conn's, the transport's and the node's
// budgets.
func (c *conn) uncharge(n int64) {
	c.held.release(n)
	c.t.held.release(n)
	c.t.cfg.Budget.Release(n)
}

// freeFrame returns fb's charge and its queued bytes, if any, and fb to
// the pool.
func (c *conn) freeFrame(fb *frameBuf) {
	if fb.charge != 0 {
		c.uncharge(fb.charge)
		fb.charge = 0
	}
	if fb.queued != 0 {
		c.queued.Add(-fb.queued)
		fb.queued = 0
	}
	putBuf(fb)
}

// readLoop reads frames until the conn fails. Any bad frame ends it: the
// stream cannot be resynchronised, and only this conn is affected.
func (c *conn) readLoop() {
	defer c.t.wg.Done()
	var err error
	if c.client {
		err = c.readReplies()
	} else {
		err = c.readRequests()
	}
	c.fail(err)
}

// nextHeader waits as long as it takes for a frame to start, then gives
// the rest of the frame IOTimeout to arrive.
func (c *conn) nextHeader() (header, int, error) {
	if _, err := c.br.Peek(1); err != nil {
		return header{}, 0, err
	}
	if c.br.Buffered() < frameOverhead {
		if err := c.armRead(); err != nil {
			return header{}, 0, err
		}
	}
	h, n, err := readHeader(c.br, c.maxRecv)
	if err != nil {
		return h, n, fmt.Errorf("read frame: %w", err)
	}
	if n > c.br.Buffered() {
		if err := c.armRead(); err != nil {
			return header{}, 0, err
		}
	}
	c.stats.bytesRecv.Add(uint64(frameOverhead + n))
	c.stats.framesRecv.Add(1)
	return h, n, nil
}

func (c *conn) armRead() error {
	if c.rdArmed {
		return nil
	}
	c.rdArmed = true
	return c.nc.SetReadDeadline(time.Now().Add(c.t.cfg.IOTimeout))
}

// rearmRead restarts an armed read deadline, after the reader waited for
// budget (our wait, not the peer's delay).
func (c *conn) rearmRead() error {
	if !c.rdArmed {
		return nil
	}
	c.rdArmed = false
	return c.armRead()
}

// disarmRead clears the read deadline once a frame is complete, so that
// an idle connection is not timed out.
func (c *conn) disarmRead() error {
	if !c.rdArmed {
		return nil
	}
	c.rdArmed = false
	return c.nc.SetReadDeadline(time.Time{})
}

// growChunk is the first allocation for a frame body, and the smallest
// step by which it grows: a body is read into a buffer that at most
// doubles as its bytes arrive, so a peer that claims 16 MiB and sends
// nothing costs this much, not 16 MiB.
const growChunk = 64 << 10

// readBody reads an n-byte frame body into b (reusing its capacity) and
// returns it.
func (c *conn) readBody(b []byte, n int) ([]byte, error) {
	b = b[:0]
	for len(b) < n {
		want := min(n, max(2*len(b), growChunk))
		b = slices.Grow(b, want-len(b))
		got := len(b)
		b = b[:want]
		if _, err := io.ReadFull(c.br, b[got:]); err != nil {
			return b[:got], fmt.Errorf("read frame body: %w", eofErr(err, 1))
		}
	}
	return b, c.disarmRead()
}

func (c *conn) readRequests() error {
	for {
		// Take a handler slot before reading: when all are busy the conn
		// stops reading and TCP flow control slows the sender down.
		select {
		case c.slots <- struct{}{}:
		default:
			select {
			case c.slots <- struct{}{}:
			case <-c.done:
				return ErrClosed
			}
		}
		h, n, err := c.nextHeader()
		if err == nil && h.kind != kindRequest {
			err = fmt.Errorf("%w: %d frame on a serving connection", ErrProtocol, h.kind)
		}
		if err != nil {
			<-c.slots
			return err
		}
		// Take the body's bytes from the budgets before reading it: beyond
		// them the conn stops reading, as for slots. The bytes are reserved
		// at the length claimed, but allocated only as they arrive.
		if !acquire2(&c.held, &c.t.held, int64(n), c.done) {
			<-c.slots
			return ErrClosed
		}
		if err := c.t.cfg.Budget.Take(c.ctx, int64(n)); err != nil {
			// No room in the node's budget: skip the body unread and tell
			// the caller, rather than hold the bytes or stall the conn.
			c.held.release(int64(n))
			c.t.held.release(int64(n))
			if err := c.skipBusy(h, n); err != nil {
				<-c.slots
				return err
			}
			<-c.slots
			continue
		}
		if err := c.rearmRead(); err != nil {
			c.uncharge(int64(n))
			<-c.slots
			return err
		}
		req := getBuf(0)
		req.charge = int64(n)
		req.b, err = c.readBody(req.b, n)
		if err != nil {
			c.freeFrame(req)
			<-c.slots
			return err
		}
		var bc *budgetCtx
		if h.budget > 0 {
			bc = c.budgetCtxFor(h.budget)
		}
		c.t.workers.run(job{c, h, req, bc}) // safe: this goroutine is itself counted
	}
}

// budgetCtxFor returns a handler ctx, held once for the caller, that ends
// budget milliseconds from now (or with the conn). Requests of one batch
// (read within a millisecond, with the same budget, as a coordinator's
// calls under one timeout are) share the last one made, if it is still
// held: its deadline is then up to shareSlack earlier than their own,
// within the field's own millisecond precision, and never later.
func (c *conn) budgetCtxFor(budget uint32) *budgetCtx {
	d := time.Duration(budget) * time.Millisecond
	dl := time.Now().Add(d)
	if s := c.lastBudget; s != nil && !s.deadline.After(dl) && dl.Sub(s.deadline) <= min(shareSlack, d/16) && s.share() {
		return s
	}
	s := c.ctxs.next(c.ctx, dl)
	c.lastBudget = s
	return s
}

// shareSlack is how much earlier than its own a request's deadline may
// be when it shares the ctx of a request read before it (budgetCtxFor).
const shareSlack = time.Millisecond

// serve runs the handler for one request and queues its reply. bc, if
// not nil, is the handler's ctx, held for this request.
func (c *conn) serve(h header, req *frameBuf, bc *budgetCtx) {
	defer func() { <-c.slots }()
	ctx := c.ctx
	if bc != nil {
		defer bc.release()
		ctx = bc
	}
	resp, rerr := runHandler(ctx, c.t.cfg.Handler, c.t.log, c.peerID, h.method, req.b)
	var out *frameBuf
	switch {
	case rerr != nil:
		out = getBuf(frameOverhead)
		out.b = appendErrorBody(out.b, rerr.Code, rerr.Msg, c.maxBody)
		putHeader(out.b, header{kind: kindError, id: h.id}, len(out.b)-frameOverhead)
	case len(resp) > c.maxBody:
		c.t.log.Warn("reply too large", "peer", c.addr, "peer_id", c.peerID, "method", h.method, "bytes", len(resp), "limit", c.maxBody)
		out = getBuf(frameOverhead + 1)
		putHeader(out.b, header{kind: kindFailure, id: h.id}, 1)
		out.b[frameOverhead] = failReplyTooLarge
	default:
		out = getBuf(frameOverhead + len(resp))
		putHeader(out.b, header{kind: kindResponse, id: h.id}, len(resp))
		copy(out.b[frameOverhead:], resp)
	}
	c.charge(out)
	c.freeFrame(req) // only now: resp may alias the request body
	if c.ctx.Err() != nil {
		// The conn or the transport is going away: like a dead process, send
		// nothing, so the caller sees the loss rather than our ctx error.
		c.freeFrame(out)
		return
	}
	c.enqueue(out)
}

// skipBusy discards the n-byte body of request h, refused for want of room
// in the node's budget, and queues the failBusy answer.
func (c *conn) skipBusy(h header, n int) error {
	if c.ctx.Err() != nil {
		return ErrClosed // the conn (or the transport) is going away
	}
	if err := c.rearmRead(); err != nil {
		return err
	}
	if _, err := c.br.Discard(n); err != nil {
		return fmt.Errorf("read frame body: %w", eofErr(err, 1))
	}
	if err := c.disarmRead(); err != nil {
		return err
	}
	c.t.logs.Warn("request refused: no room in the memory budget", c.source, "peer", c.addr, "peer_id", c.peerID, "method", h.method, "bytes", n)
	out := getBuf(frameOverhead + 1)
	putHeader(out.b, header{kind: kindFailure, id: h.id}, 1)
	out.b[frameOverhead] = failBusy
	c.charge(out)
	c.enqueue(out)
	return nil
}

func (c *conn) readReplies() error {
	for {
		h, n, err := c.nextHeader()
		if err == nil && h.kind == kindRequest {
			err = fmt.Errorf("%w: request frame on a calling connection", ErrProtocol)
		}
		if err != nil {
			return err
		}
		c.mu.Lock()
		cl := c.pending.take(h.id)
		c.mu.Unlock()
		if cl == nil {
			// The caller gave up (ctx ended): drop the late reply.
			if _, err := c.br.Discard(n); err != nil {
				return fmt.Errorf("read frame body: %w", eofErr(err, 1))
			}
			if err := c.disarmRead(); err != nil {
				return err
			}
			continue
		}
		// A body larger than the buffer makes the conn busy until it is
		// read: calls picked meanwhile go to another conn, if there is one.
		big := n > bufSize
		if big {
			c.bigRead.Store(true)
		}
		charged, err := c.chargeReply(cl, n)
		if err != nil {
			return err
		}
		if charged < 0 {
			if big {
				c.bigRead.Store(false)
			}
			continue // refused: skipped unread, and cl answered
		}
		var body []byte
		if n > 0 {
			// Owned by the caller, so not pooled.
			body, err = c.readBody(nil, n)
			if big {
				c.bigRead.Store(false)
			}
			if err != nil {
				c.t.cfg.Budget.Release(charged)
				c.deliver(cl, result{err: &connLostError{addr: c.addr, cause: err}})
				return err
			}
		} else if err := c.disarmRead(); err != nil {
			c.deliver(cl, result{err: &connLostError{addr: c.addr, cause: err}})
			return err
		}
		var r result
		switch h.kind {
		case kindResponse:
			r.body = body
		case kindError:
			re, err := parseErrorBody(body)
			if err != nil {
				c.deliver(cl, result{err: &connLostError{addr: c.addr, cause: err}})
				return err
			}
			r.err = re
		case kindFailure:
			r.err = fmt.Errorf("call %s: %w", c.addr, failureErr(body))
		}
		c.deliver(cl, r)
		c.t.cfg.Budget.Release(charged)
	}
}

// chargeReply charges a reply body of more than growChunk bytes to the
// node's budget at the length in its header, before it is read, waiting
// as requests do: large replies arriving at once (GETs of many large keys
// the node has not seen, whose size no read could reserve: issue 14) then
// wait unread, held back by TCP flow control, instead of all being read
// before their callers charge what they keep. The charge ends once the
// body is delivered. When the budget has no room within its wait, the
// body is skipped unread and cl gets the *membudget.BusyError (charged
// -1). Smaller replies are not charged: a read allocates growChunk first
// anyway.
func (c *conn) chargeReply(cl *call, n int) (charged int64, err error) {
	if n <= growChunk || c.t.cfg.Budget == nil {
		return 0, nil
	}
	// A calling conn has no ctx of its own: the transport's. The wait was
	// ours, not the peer's: the read deadline restarts after it.
	terr := c.t.cfg.Budget.Take(c.t.ctx, int64(n))
	if err := c.rearmRead(); err != nil {
		if terr == nil {
			c.t.cfg.Budget.Release(int64(n))
		}
		c.deliver(cl, result{err: &connLostError{addr: c.addr, cause: err}})
		return 0, err
	}
	if terr == nil {
		return int64(n), nil
	}
	if _, err := c.br.Discard(n); err != nil {
		err = fmt.Errorf("read frame body: %w", eofErr(err, 1))
		c.deliver(cl, result{err: &connLostError{addr: c.addr, cause: err}})
		return 0, err
	}
	if err := c.disarmRead(); err != nil {
		c.deliver(cl, result{err: &connLostError{addr: c.addr, cause: err}})
		return 0, err
	}
	c.deliver(cl, result{err: fmt.Errorf("call %s: reply of %d bytes: %w", c.addr, n, terr)})
	return -1, nil
}

// peerCounters counts one peer's traffic across all its connections.
type peerCounters struct {
	bytesSent, bytesRecv, framesSent, framesRecv, batches, writes, reads atomic.Uint64
}

// countingConn counts the read and write calls into the socket, each of
// which is (at least) one syscall.
type countingConn struct {
	nc            net.Conn
	reads, writes *atomic.Uint64
}

func (c countingConn) Read(p []byte) (int, error) {
	c.reads.Add(1)
	return c.nc.Read(p)
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.nc.Write(p)
}

// PeerStats is the traffic exchanged with one peer, in both roles (our
// calls to it and its calls to us), since the transport started. Bytes are
// frame bytes including the length prefix and header; the handshake and
// TCP/IP overhead are not counted.
type PeerStats struct {
	BytesSent, BytesReceived   uint64
	FramesSent, FramesReceived uint64
	// Batches counts flushes of queued frames; FramesSent/Batches is how
	// many frames shared a write on average. (A batch over the 32 KiB
	// write buffer takes more than one syscall.)
	Batches uint64
	// Writes and Reads count the write and read calls made on the
	// sockets, not counting the handshake's. Each is at least one
	// syscall: a read can also cost the one that finds nothing before
	// Go's poller waits, a write more if the kernel takes it in pieces.
	Writes, Reads uint64
}
