// Package resp is the Redis-protocol (RESP2) front of a quorumkv node:
// next to the HTTP API and over the same coordinator (through a Backend
// that package node implements), so redis-cli, redis-benchmark and every
// Redis client library can use quorumkv. node.Config.RESPAddr starts it.
//
// Commands (names and options case-insensitive; [opts] are "NAME value"
// pairs after the fixed arguments):
//
//	PING [msg]            ECHO msg              QUIT
//	GET key [N n] [R r] [PR pr] [TIMEOUT t]
//	SET key value [EX s | PX ms | EXAT unix-s | PXAT unix-ms | KEEPTTL] [NX] [opts]
//	EXPIRE key seconds [NX | XX | GT | LT] [opts]   PEXPIRE key ms [...]
//	PERSIST key [opts]    TTL key [read opts]   PTTL key [read opts]
//	DEL key [key ...]     EXISTS key [key ...]  MGET key [key ...]
//	MSET key value [key value ...]
//	QGET key [read opts]
//	QSET key value [CONTEXT ctx] [write opts]
//	QDEL key [CONTEXT ctx] [write opts]
//	QUORUM [N n] [R r] [W w] [PR pr] [PW pw] [DW dw] [TIMEOUT t] | QUORUM RESET
//	INFO [section ...]    COMMAND [COUNT | INFO name ... | DOCS]
//	HELLO [2]  CLIENT SETNAME|GETNAME|SETINFO|ID  SELECT 0  CONFIG GET pattern
//
// Counts are numbers or one, quorum, all (resolved against the command's N,
// else the connection's, else the node's). TIMEOUT is milliseconds or a
// duration ("2s"). Multi-key commands take no options: QUORUM sets this
// connection's defaults for every later command (each QUORUM replaces the
// previous settings; fields not given fall back to the node's defaults).
//
// Siblings. SET is an overwrite, as HTTP's PUT with overwrite=true
// (writes.go): it supersedes what a read at R sees and what the
// coordinating replica holds when it writes, so a client that only SETs
// never grows siblings, while SETs that truly race through different
// coordinators still become siblings. GET of a key with several live siblings returns the one with
// the latest coordinator timestamp (ties: the greatest dot), the same pick
// on every node, and counts the read in INFO (get_sibling_reads,
// get_siblings_hidden); it never hides them from QGET. QGET answers
// [context, [sibling ...]], each sibling [value or nil for a tombstone, dot,
// timestamp in Unix ms, deleted 0/1, content type]. QSET and QDEL write with
// exactly the causal context given (none: concurrent with everything, as
// the HTTP API's PUT) and answer [new context, sibling count]. DEL deletes
// what a read at R sees of each key, and what the coordinator holds, as
// HTTP's DELETE without a context; it answers how many keys had a live
// value, as Redis does. INFO counts writes that left siblings
// (sibling_writes, both fronts) and those over the node's warning
// threshold (sibling_warnings). On a ring smaller than the default N,
// commands that give no N use the ring's size (INFO effective_n).
// MSET is not atomic: each pair is its own quorum write.
// MGET streams its answer, bounded in memory (multikey): an error on the
// first key is the command's error, an error on a later key an error
// element inside the array.
//
// Expiry (expiry.go): SET's EX and PX give the value a time to live that
// the coordinating node turns into a deadline; EXAT and PXAT give the
// deadline; KEEPTTL keeps the deadline of the value a read at R finds.
// Past its deadline a value reads as absent everywhere. EXPIRE, PEXPIRE
// and PERSIST are causal writes of the value GET would return with a new
// deadline (or none), over what their read at R saw; they answer 1 when
// they wrote. TTL and PTTL answer -2 for a key with no live value, -1 for
// a value without a deadline. SET's options are parsed by parseSetArgs
// (expiry.go): NX makes a create-only write (with its deadline, if any);
// XX and GET are refused.
//
// Errors have the HTTP API's meanings, by prefix:
//
//	ERR            bad arguments (HTTP 400): arity, syntax, a bad parameter
//	               ("ERR bad parameter r: r=4: cannot exceed n=3"), a bad context,
//	               unknown commands; "ERR Protocol error: ..." then closes
//	QUORUM         the quorum was not met (HTTP 503), with the counts:
//	               "QUORUM put: quorum not met: 1 of 2 required acks ..."
//	TOOLARGE       value or siblings over the limits (HTTP 413): the
//	               value size, 12 MiB of siblings per key, or the sibling
//	               count cap (Config.MaxSiblings)
//	NOCOORDINATOR  no live replica could coordinate the write (HTTP 503)
//	CLUSTERDOWN    this node has not joined its cluster yet, and the command
//	               gave no N (HTTP 503)
//	ERR disk full  this node is read-only: its disk is (nearly) full (HTTP 507)
//	SHUTDOWN       the node is shutting down (HTTP 503)
//	BUSY           the node's memory budget had no room for a command's
//	               buffer in time (HTTP 503 busy); the connection closes
//	INTERNAL       anything else (HTTP 500)
//
// A write that failed may still become visible (Dynamo semantics), as on
// the HTTP API.
//
// Limits: a value over Config.MaxValueSize is refused with TOOLARGE; one
// argument over that plus 64 KiB, a command over about that plus a key, more
// than 8192 arguments or an inline line over 64 KiB is a protocol error
// that closes the connection. Each connection buffers at most one command,
// however deeply a client pipelines. Inline commands (telnet) split on
// spaces and take no quotes.
//
// A command is one entry of the command table (commandTable in
// commands.go): name, arity, flags, key positions and its function.
package resp

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tidwall/redcon"

	"github.com/quorumkv/quorumkv/auth"
	"github.com/quorumkv/quorumkv/connlimit"
	"github.com/quorumkv/quorumkv/membudget"
	"github.com/quorumkv/quorumkv/multikey"
	"github.com/quorumkv/quorumkv/quorum"
)

// RESP connection limits.
const (
	// commandSlack is what one command may hold beyond a key and a
	// value of the maximum sizes: names, options, framing.
	commandSlack = 64 << 10
	// flushAt flushes buffered replies of a pipeline once this many
	// bytes are waiting, instead of at the pipeline's end.
	flushAt = 64 << 10
	// writeTimeout bounds one flush: a client that stops reading its
	// replies is disconnected.
	writeTimeout = 30 * time.Second
	// multiParallel is how many keys of one MGET, MSET, DEL or EXISTS
	// are in flight at once.
	multiParallel = 16
	// maxConns bounds concurrent RESP connections; more are refused
	// with an error reply.
	maxConns = 10000
)

// Server serves RESP connections for one node.
type Server struct {
	b   Backend
	cfg Config
	ln  net.Listener
	cmd map[string]*command

	// ctx is the requests' context: cancelled when a graceful drain times
	// out, so requests still running end at once.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and every connection

	mu      sync.Mutex
	conns   map[*conn]struct{}
	closing bool
	// stopping mirrors closing for connections setting their own read
	// deadline, which must not replace the past one Close set.
	stopping atomic.Bool
	nextID   int64

	stats serverStats
	// partial is the budget of read buffers grown for unfinished
	// commands, inside cfg.Budget (nil: unaccounted).
	partial *membudget.Budget
	// multiEstimate remembers large costs of multi-key commands across
	// commands (multikey.Config.Shared).
	multiEstimate multikey.Estimator
	// sizes remembers the cost of reading keys found large, which GET
	// reserves before reading them (multikey.Sizes).
	sizes multikey.Sizes
	// attackLog is when a cross-protocol attempt was last logged (Unix ns).
	attackLog atomic.Int64
}

// serverStats are the counters INFO shows.
type serverStats struct {
	connsTotal, commands, errors        atomic.Uint64
	rejectedConns                       atomic.Uint64
	getHits, getMisses                  atomic.Uint64
	siblingReads, siblingsHidden        atomic.Uint64
	quorumFailures                      atomic.Uint64
	setsSuperseding, qsets, deletesSent atomic.Uint64
}

// New returns a server of b's commands on ln; Serve starts it.
func New(ln net.Listener, b Backend, cfg Config) *Server {
	if cfg.Timeouts == (connlimit.RESPTimeouts{}) {
		cfg.Timeouts = connlimit.DefaultRESPTimeouts()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{b: b, cfg: cfg, ln: ln, conns: make(map[*conn]struct{})}
	if cfg.Budget != nil {
		limit := min(connlimit.DefaultPartialBytes(cfg.Budget.Limit(), s.maxCmd()), cfg.Budget.Limit())
		// Cannot fail: the limit is positive and within the parent's.
		s.partial, _ = membudget.New(membudget.Config{Limit: limit, Parent: cfg.Budget})
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.cmd = commandTable()
	s.registerMetrics()
	return s
}

// Serve starts accepting connections; Close stops it.
func (s *Server) Serve() {
	s.wg.Add(1)
	go s.acceptLoop()
}

// Addr is the listener's bound address ("" for a nil server).
func (s *Server) Addr() string {
	if s == nil || s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := connlimit.Accept(s.ctx, s.ln, func(err error, retryIn time.Duration) {
			s.cfg.Log.Warn("resp accept", "err", err, "retry_in", retryIn)
		})
		if err != nil {
			return // closed
		}
		c := s.newConn(nc)
		s.mu.Lock()
		switch {
		case s.closing:
			s.mu.Unlock()
			_ = nc.Close()
			continue
		case len(s.conns) >= maxConns:
			s.mu.Unlock()
			s.stats.rejectedConns.Add(1)
			_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = nc.Write(redcon.AppendError(nil, "ERR max number of clients reached"))
			_ = nc.Close()
			continue
		}
		s.nextID++
		c.id = s.nextID
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.stats.connsTotal.Add(1)
		go c.serve()
	}
}

// Close stops accepting, lets every connection finish the commands it has
// read (replies are sent), and closes them; at ctx's end, requests still
// running are cancelled and the connections closed.
func (s *Server) Close(ctx context.Context) {
	if s == nil {
		return
	}
	_ = s.ln.Close()
	s.mu.Lock()
	s.closing = true
	s.stopping.Store(true)
	for c := range s.conns {
		// Wakes a connection blocked reading; one running a command
		// finds the deadline passed at its next read.
		_ = c.nc.SetReadDeadline(time.Unix(1, 0))
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.cancel()
		s.mu.Lock()
		for c := range s.conns {
			_ = c.nc.Close()
		}
		s.mu.Unlock()
		<-done
	}
	s.cancel()
}

func (s *Server) connCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// registerMetrics adds the RESP counters to the node's Prometheus registry.
func (s *Server) registerMetrics() {
	reg := s.cfg.Registry
	counter := func(name, help string, v *atomic.Uint64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v.Load()) }))
	}
	counter("quorumkv_resp_commands_total", "RESP commands processed.", &s.stats.commands)
	counter("quorumkv_resp_errors_total", "RESP commands answered with an error.", &s.stats.errors)
	counter("quorumkv_resp_connections_total", "RESP connections accepted.", &s.stats.connsTotal)
	counter("quorumkv_resp_get_sibling_reads_total",
		"RESP GETs of a key with several live siblings (GET returned one of them).", &s.stats.siblingReads)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "quorumkv_resp_connections", Help: "Open RESP connections.",
	}, func() float64 { return float64(s.connCount()) }))
}

// conn is one client connection; its goroutine reads a command, runs
// it, and appends the reply, flushing when the pipeline is drained.
type conn struct {
	s   *Server
	nc  net.Conn
	id  int64
	rd  *reader
	out []byte
	// replies charges GET's sets and their copies in out to cfg.Budget
	// from before the read until out is flushed.
	replies membudget.Hold

	// params are the connection's QUORUM settings (zero: node defaults).
	params quorum.Params
	name   string
	quit   bool
	// principal is who AUTH or HELLO authenticated; authed is set then,
	// or from the start without Config.Auth (auth.go).
	principal auth.Principal
	authed    bool
	armed     time.Time // when the write deadline was last set
	timer     *connlimit.CommandTimer
}

func (s *Server) newConn(nc net.Conn) *conn {
	cfg := s.cfg
	// A value somewhat over the limit is read and refused with TOOLARGE,
	// the connection staying usable; a larger argument is a protocol error.
	c := &conn{s: s, nc: nc, rd: newReader(nc, s.maxBulk(), s.maxCmd()), timer: connlimit.NewCommandTimer(cfg.Timeouts),
		authed: cfg.Auth == nil}
	c.rd.hold = s.partial.NewHold()
	c.replies = cfg.Budget.NewHold()
	return c
}

// maxBulk is the largest argument: a value somewhat over the limit is
// read and refused with TOOLARGE, the connection staying usable; a larger
// argument is a protocol error.
func (s *Server) maxBulk() int {
	return max(s.cfg.MaxValueSize, s.cfg.MaxKeySize) + commandSlack
}

// maxCmd is the largest command, all of it.
func (s *Server) maxCmd() int {
	return s.maxBulk() + s.cfg.MaxKeySize + commandSlack
}

func (c *conn) serve() {
	defer c.s.wg.Done()
	defer func() {
		_ = c.nc.Close()
		c.rd.hold.Release()
		c.replies.Release()
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	}()
	for {
		args, ok, err := c.rd.next()
		if err != nil {
			if errors.Is(err, errCrossProtocol) {
				c.s.logCrossProtocol(c.nc.RemoteAddr().String())
				return // unanswered, as Redis does
			}
			var pe *protocolError
			if errors.As(err, &pe) {
				c.out = redcon.AppendError(c.out, "ERR Protocol error: "+pe.msg)
			}
			_ = c.flush()
			return
		}
		if !ok {
			if err := c.flush(); err != nil {
				return
			}
			if err := c.fillTimed(); err != nil {
				var se *connlimit.SlowError
				var busy *membudget.BusyError
				switch {
				case errors.As(err, &se):
					c.out = redcon.AppendError(c.out, "ERR Protocol error: command too slow")
					_ = c.flush()
				case errors.As(err, &busy):
					// An unfinished command cannot be skipped: close.
					c.out = redcon.AppendError(c.out, "BUSY "+busy.Error())
					_ = c.flush()
				}
				return
			}
			continue
		}
		c.timer.CommandDone()
		c.exec(args)
		if c.quit {
			_ = c.flush()
			return
		}
		if len(c.out) >= flushAt {
			if err := c.flush(); err != nil {
				return
			}
		}
	}
}

// fillTimed reads more bytes under the connection's read deadline: the
// idle timeout between commands, the command pace within one. A read
// that timed out returns connlimit.ErrIdle or a *connlimit.SlowError.
func (c *conn) fillTimed() error {
	if d, ok := c.timer.Deadline(time.Now(), c.rd.end-c.rd.start); ok {
		if err := c.nc.SetReadDeadline(d); err != nil {
			return err
		}
		// Close sets stopping before it wakes readers with a past
		// deadline; checked after ours is set, it cannot be overwritten.
		if c.s.stopping.Load() {
			return net.ErrClosed
		}
	}
	err := c.rd.fill()
	if err == nil {
		return nil // before errors.As, whose target escapes: an allocation per read
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && !c.s.stopping.Load() {
		return c.timer.Expired(time.Now())
	}
	return err
}

func (c *conn) flush() error {
	if len(c.out) == 0 {
		return nil
	}
	// Re-arming the deadline costs a timer update per reply; doing it only
	// when a third of it has passed keeps every write bounded by between
	// 2/3 and all of writeTimeout.
	if now := time.Now(); now.Sub(c.armed) > writeTimeout/3 {
		if err := c.nc.SetWriteDeadline(now.Add(writeTimeout)); err != nil {
			return err
		}
		c.armed = now
	}
	_, err := c.nc.Write(c.out)
	c.replies.Release()
	if cap(c.out) > 4*flushAt {
		c.out = nil // do not keep a large reply's buffer for an idle client
	} else {
		c.out = c.out[:0]
	}
	return err
}
