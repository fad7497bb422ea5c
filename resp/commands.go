package resp

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/tidwall/redcon"

	"github.com/quorumkv/quorumkv/auth"
	"github.com/quorumkv/quorumkv/httpapi"
	"github.com/quorumkv/quorumkv/internal/excerpt"
	"github.com/quorumkv/quorumkv/membudget"
	"github.com/quorumkv/quorumkv/multikey"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/replica"
	"github.com/quorumkv/quorumkv/siblings"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/vclock"
)

// command is one command of the RESP front.
type command struct {
	name  string
	arity int // Redis convention: n exactly n arguments (name included); -n at least n
	flags []string
	// firstKey, lastKey and step locate the keys, for COMMAND.
	firstKey, lastKey, step int
	fn                      func(c *conn, args [][]byte)
	calls                   atomic.Uint64
}

// commandTable builds the command table; each server has its own, so the
// per-command counters are per node.
func commandTable() map[string]*command {
	cmds := []*command{
		{name: "get", arity: -2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: (*conn).cmdGet},
		{name: "set", arity: -3, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: 1, step: 1, fn: (*conn).cmdSet},
		{name: "del", arity: -2, flags: []string{"write"}, firstKey: 1, lastKey: -1, step: 1, fn: (*conn).cmdDel},
		{name: "exists", arity: -2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: -1, step: 1, fn: (*conn).cmdExists},
		{name: "mget", arity: -2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: -1, step: 1, fn: (*conn).cmdMGet},
		{name: "mset", arity: -3, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: -1, step: 2, fn: (*conn).cmdMSet},
		{name: "scan", arity: -2, flags: []string{"readonly"}, fn: (*conn).cmdScan},
		{name: "qget", arity: -2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: (*conn).cmdQGet},
		{name: "qset", arity: -3, flags: []string{"write", "denyoom"}, firstKey: 1, lastKey: 1, step: 1, fn: (*conn).cmdQSet},
		{name: "qdel", arity: -2, flags: []string{"write"}, firstKey: 1, lastKey: 1, step: 1, fn: (*conn).cmdQDel},
		{name: "expire", arity: -3, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: (*conn).cmdExpire},
		{name: "pexpire", arity: -3, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: (*conn).cmdPExpire},
		{name: "persist", arity: -2, flags: []string{"write", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: (*conn).cmdPersist},
		{name: "ttl", arity: -2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: (*conn).cmdTTL},
		{name: "pttl", arity: -2, flags: []string{"readonly", "fast"}, firstKey: 1, lastKey: 1, step: 1, fn: (*conn).cmdPTTL},
		{name: "quorum", arity: -1, flags: []string{"fast"}, fn: (*conn).cmdQuorum},
		{name: "ping", arity: -1, flags: []string{"fast"}, fn: (*conn).cmdPing},
		{name: "echo", arity: 2, flags: []string{"fast"}, fn: (*conn).cmdEcho},
		{name: "quit", arity: -1, flags: []string{"fast"}, fn: (*conn).cmdQuit},
		{name: "info", arity: -1, flags: []string{"loading", "stale"}, fn: (*conn).cmdInfo},
		{name: "command", arity: -1, flags: []string{"loading", "stale"}, fn: (*conn).cmdCommand},
		{name: "hello", arity: -1, flags: []string{"fast"}, fn: (*conn).cmdHello},
		{name: "auth", arity: -2, flags: []string{"fast", "no-auth"}, fn: (*conn).cmdAuth},
		{name: "client", arity: -2, flags: []string{"fast"}, fn: (*conn).cmdClient},
		{name: "select", arity: 2, flags: []string{"fast"}, fn: (*conn).cmdSelect},
		{name: "config", arity: -2, flags: []string{"admin"}, fn: (*conn).cmdConfig},
	}
	m := make(map[string]*command, len(cmds))
	for _, c := range cmds {
		m[c.name] = c
	}
	return m
}

// maxCommandName is the longest command name looked up.
const maxCommandName = 16

func (c *conn) exec(args [][]byte) {
	c.s.stats.commands.Add(1)
	var lower [maxCommandName]byte
	var cmd *command
	if name := args[0]; len(name) <= len(lower) {
		for i, ch := range name {
			if 'A' <= ch && ch <= 'Z' {
				ch += 'a' - 'A'
			}
			lower[i] = ch
		}
		cmd = c.s.cmd[string(lower[:len(name)])]
	}
	if !c.authed && !auth.AllowedBeforeAuth(args[0]) {
		c.errorf("%s", auth.ReplyNoAuth)
		return
	}
	if cmd == nil {
		var b strings.Builder
		for _, a := range args[1:min(len(args), 4)] {
			fmt.Fprintf(&b, "'%s' ", clip(a))
		}
		c.errorf("ERR unknown command '%s', with args beginning with: %s", clip(args[0]), b.String())
		return
	}
	if (cmd.arity > 0 && len(args) != cmd.arity) || (cmd.arity < 0 && len(args) < -cmd.arity) {
		c.errorf("ERR wrong number of arguments for '%s' command", cmd.name)
		return
	}
	if !c.authorize(cmd, args[0]) {
		return
	}
	cmd.calls.Add(1)
	cmd.fn(c, args)
}

// clip shortens a client's argument for an error message.
func clip(b []byte) string { return excerpt.Of(b, 64) }

// Reply helpers: they append to the connection's output buffer.

func (c *conn) ok()                 { c.out = redcon.AppendOK(c.out) }
func (c *conn) status(s string)     { c.out = redcon.AppendString(c.out, s) }
func (c *conn) bulk(b []byte)       { c.out = redcon.AppendBulk(c.out, b) }
func (c *conn) bulkString(s string) { c.out = redcon.AppendBulkString(c.out, s) }
func (c *conn) null()               { c.out = redcon.AppendNull(c.out) }
func (c *conn) integer(v int64)     { c.out = redcon.AppendInt(c.out, v) }
func (c *conn) array(n int)         { c.out = redcon.AppendArray(c.out, n) }
func (c *conn) errorf(f string, a ...any) {
	c.s.stats.errors.Add(1)
	c.out = redcon.AppendError(c.out, fmt.Sprintf(f, a...))
}

// tooLargeError is a value over Config.MaxValueSize (HTTP 413).
type tooLargeError struct{ size, limit int }

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("value of %d bytes exceeds the limit of %d", e.size, e.limit)
}

// writeErr answers err with the prefix of its kind (see the top of resp.go).
func (c *conn) writeErr(op string, err error) {
	var (
		qe *quorum.QuorumError
		pe *quorum.ParamError
		se *syntaxError
		te *tooLargeError
	)
	switch {
	case errors.As(err, &se):
		c.errorf("ERR %s", se.Error())
	case errors.As(err, &qe):
		c.s.stats.quorumFailures.Add(1)
		c.s.cfg.QuorumFailures.WithLabelValues(op).Inc()
		c.errorf("QUORUM %s", err.Error())
	case errors.As(err, &pe):
		c.errorf("ERR bad parameter %s: %s", pe.Param, pe.Msg)
	case errors.As(err, &te):
		c.errorf("TOOLARGE %s", te.Error())
	case errors.Is(err, replica.ErrSetTooLarge), errors.Is(err, replica.ErrTooManySiblings):
		c.errorf("TOOLARGE %s", err.Error())
	case errors.Is(err, membudget.ErrBusy):
		// The node's memory budget had no room in time (an item of a
		// multi-key command): retry later, as HTTP's 503 busy says.
		c.errorf("BUSY %s", err.Error())
	case errors.Is(err, quorum.ErrInvalid):
		c.errorf("ERR %s", err.Error())
	case errors.Is(err, quorum.ErrNoCoordinator):
		c.errorf("NOCOORDINATOR %s", err.Error())
	case errors.Is(err, quorum.ErrNotJoined):
		c.errorf("CLUSTERDOWN %s", err.Error())
	case errors.Is(err, store.ErrDiskFull):
		// After QUORUM: a quorum failure names a full replica in its text.
		c.errorf("ERR disk full: %s", err.Error())
	case errors.Is(err, quorum.ErrClosed), errors.Is(err, store.ErrClosed),
		errors.Is(err, context.Canceled) && c.s.ctx.Err() != nil:
		c.errorf("SHUTDOWN node is shutting down")
	default:
		c.s.cfg.Log.Error("resp request failed", "op", op, "err", err)
		c.errorf("INTERNAL %s", err.Error())
	}
}

// options parses a command's trailing options; counts resolve against the
// N given there, else the connection's, else the node's.
func (c *conn) options(args [][]byte, allowed optSet) (parsedOptions, error) {
	nv := c.params.N
	if nv == 0 {
		nv = c.s.b.DefaultN()
	}
	o, err := parseOptions(args, allowed, nv)
	if err != nil {
		return o, err
	}
	o.p, err = c.fitted(mergeParams(o.p, c.params))
	return o, err
}

// fitted is p with N fitted to a ring smaller than the default N (Node.fit).
// RESP has no headers for the warning: INFO shows the effective N and
// /status warns.
func (c *conn) fitted(p quorum.Params) (quorum.Params, error) {
	p, _, err := c.s.b.Fit(p)
	return p, err
}

func (c *conn) checkKey(key []byte) error {
	if len(key) == 0 {
		return &quorum.ParamError{Param: "key", Msg: "empty key"}
	}
	if len(key) > c.s.cfg.MaxKeySize {
		return &quorum.ParamError{Param: "key", Msg: fmt.Sprintf("key of %d bytes exceeds the limit of %d", len(key), c.s.cfg.MaxKeySize)}
	}
	return nil
}

// read runs a quorum read of key. The key is copied: the coordinator's
// background work (late replies, read repair) outlives the command, and
// args alias the connection's read buffer.
func (c *conn) read(key []byte, p quorum.Params) (vclock.Set, error) {
	if err := c.checkKey(key); err != nil {
		return vclock.Set{}, err
	}
	res, err := c.s.b.Read(c.s.ctx, []byte(string(key)), p)
	if err != nil {
		return vclock.Set{}, err
	}
	return res.Set, nil
}

// write runs a quorum write: with exactly the context vctx, or with
// overwrite, over what a read at p's R sees (quorum.Coordinator.Overwrite; a
// delete of a key that read found no live value of writes nothing, and
// res is nil). Key and value are copied, in one allocation, for the reason
// given at read.
func (c *conn) write(op string, key, value []byte, deleted bool, vctx vclock.Vector, overwrite bool, p quorum.Params) (*quorum.WriteResult, error) {
	return c.writeValue(op, key, vclock.Value{Data: value, Deleted: deleted}, expiry{}, vctx, overwrite, p)
}

// writeValue is write of v (its Data, ContentType and Deleted) with the
// deadline exp.
func (c *conn) writeValue(op string, key []byte, v vclock.Value, exp expiry, vctx vclock.Vector, overwrite bool, p quorum.Params) (*quorum.WriteResult, error) {
	req, err := c.request(key, v, exp, vctx, p)
	if err != nil {
		return nil, err
	}
	res, _, err := c.s.b.Write(c.s.ctx, req, overwrite)
	return res, err
}

// request checks key and value and builds a write of them with the
// deadline exp, in one copy (the coordinator outlives the command's
// buffers).
func (c *conn) request(key []byte, v vclock.Value, exp expiry, vctx vclock.Vector, p quorum.Params) (quorum.PutRequest, error) {
	if err := c.checkKey(key); err != nil {
		return quorum.PutRequest{}, err
	}
	if len(v.Data) > c.s.cfg.MaxValueSize {
		return quorum.PutRequest{}, &tooLargeError{size: len(v.Data), limit: c.s.cfg.MaxValueSize}
	}
	buf := make([]byte, len(key)+len(v.Data))
	copy(buf, key)
	copy(buf[len(key):], v.Data)
	val := vclock.Value{Deleted: v.Deleted, ContentType: v.ContentType, Expires: exp.at}
	if !v.Deleted {
		val.Data = buf[len(key):]
	}
	return quorum.PutRequest{Key: buf[:len(key):len(key)], Value: val, Context: vctx, Params: p, TTL: exp.ttl}, nil
}

// pick is what a plain GET returns of a set: the live sibling with the
// latest timestamp, ties broken by the greatest dot (siblings are sorted by
// dot), so every node picks the same. live counts the live siblings.
func pick(s vclock.Set) (v vclock.Value, live int) {
	for _, sib := range s.Siblings {
		if sib.Value.Deleted {
			continue
		}
		live++
		if live == 1 || sib.Value.Timestamp >= v.Timestamp {
			v = sib.Value
		}
	}
	return v, live
}

// observeRead counts what a plain read saw, for INFO.
func (c *conn) observeRead(live int) {
	st := &c.s.stats
	if live == 0 {
		st.getMisses.Add(1)
	} else {
		st.getHits.Add(1)
	}
	if live > 1 {
		st.siblingReads.Add(1)
		st.siblingsHidden.Add(uint64(live - 1))
	}
	c.s.cfg.SiblingsPerRead.Observe(float64(live))
}

// readOne runs the quorum read of GET and QGET (key, then read options);
// on an error it answers it and returns false. As HTTP's GET, the read is
// charged to the budget from before it until its reply is flushed
// (conn.replies): a key found large before reserves that cost first,
// others multikey.ReadReserve; after it, the set's size, and twice it
// (the set and the value's copy in the reply) before the reply is built;
// once built, the reply's bytes only (keepReply). base is what the
// connection held before.
func (c *conn) readOne(args [][]byte) (set vclock.Set, base int64, ok bool) {
	base = c.replies.Size()
	o, err := c.options(args[2:], readOpts)
	var rd multikey.Read
	if err == nil {
		rd, err = c.s.sizes.Reserve(c.s.ctx, &c.replies, args[1])
		defer rd.End()
	}
	if err == nil {
		set, err = c.read(args[1], o.p)
	}
	if err == nil {
		size := siblings.Bytes(set)
		err = rd.Charge(c.s.ctx, &c.replies, args[1], size, 2*size)
	}
	if err != nil {
		c.replies.ForceResize(base)
		c.writeErr("get", err)
		return set, base, false
	}
	return set, base, true
}

// keepReply shrinks what a GET holds, once its reply is built in out
// from start on, to base and the reply's bytes: the set it was built
// from is garbage by then, and a reply stuck behind a client that does
// not read holds only itself.
func (c *conn) keepReply(base int64, start int) {
	c.replies.ForceResize(base + int64(len(c.out)-start))
}

func (c *conn) cmdGet(args [][]byte) {
	set, base, ok := c.readOne(args)
	if !ok {
		return
	}
	v, live := pick(set)
	c.observeRead(live)
	start := len(c.out)
	defer c.keepReply(base, start)
	if live == 0 {
		c.null()
		return
	}
	c.bulk(v.Data)
}

// cmdSet overwrites: it supersedes what a read at R sees, and what the
// coordinating replica holds (quorum.Coordinator.Overwrite), as HTTP's PUT with
// overwrite=true does.
//
// With NX it is a create-only write: it writes only if a read at R finds
// no live value, and answers nil otherwise (httpapi.Creator).
func (c *conn) cmdSet(args [][]byte) {
	a, err := parseSetArgs(args[3:])
	var o parsedOptions
	if err == nil {
		o, err = c.options(a.rest, setOpts)
	}
	if err == nil && (a.cond == setXX || a.get) {
		err = syntax("quorumkv does not support SET ... XX or GET")
	}
	if err != nil {
		c.writeErr("put", err)
		return
	}
	switch {
	case a.cond == setNX: // KEEPTTL has nothing to keep on a key it may create
		c.create(args[1], args[2], a.exp, o.p)
		return
	case a.keepTTL:
		c.setKeepTTL(args[1], args[2], o.p)
		return
	}
	if _, err := c.writeValue("put", args[1], vclock.Value{Data: args[2]}, a.exp, nil, true, o.p); err != nil {
		c.writeErr("put", err)
		return
	}
	c.s.stats.setsSuperseding.Add(1)
	c.ok()
}

// create is SET ... NX: OK when written, nil when a read found a value.
func (c *conn) create(key, value []byte, exp expiry, p quorum.Params) {
	cr, ok := c.s.b.(httpapi.Creator)
	if !ok {
		c.writeErr("put", errNoCreate)
		return
	}
	req, err := c.request(key, vclock.Value{Data: value}, exp, nil, p)
	if err != nil {
		c.writeErr("put", err)
		return
	}
	_, _, created, err := cr.Create(c.s.ctx, req)
	switch {
	case err != nil:
		c.writeErr("put", err)
	case created:
		c.ok()
	default:
		c.null()
	}
}

// each runs fn for 0..n-1, the keys of a multi-key command with one
// answer (MSET, DEL, EXISTS), through multikey.Run: at most 16 keys in
// flight and 16 MiB reserved per command, charged to the node's budget
// while each runs, so a command naming many large keys never holds them
// all at once; fn returns the most it held (the set it read, the value
// it copied). Every key runs (the commands are not atomic); the error
// returned is that of the lowest index that failed, or a
// *membudget.BusyError for a key the budget had no room for.
func (c *conn) each(n int, fn func(i int) (peak int64, err error)) error {
	var first error
	err := multikey.Run(c.s.ctx, multikey.Config{Budget: c.s.cfg.Budget, Parallel: multiParallel, Shared: &c.s.multiEstimate}, n,
		func(_ context.Context, i int) (struct{}, multikey.Cost, error) {
			peak, err := fn(i)
			return struct{}{}, multikey.Cost{Peak: peak}, err
		},
		func(_ int, _ struct{}, err error) error {
			if first == nil {
				first = err
			}
			return nil
		})
	if err != nil {
		return err
	}
	return first
}

// writeCost is what a write of key and value held at most, as far as the
// front sees: its copy of both and the set it left. (An overwrite's or
// delete's read happens inside the backend, before the write: its set is
// not seen here, and is charged what the command reserved.)
func writeCost(key, value []byte, res *quorum.WriteResult) int64 {
	n := int64(len(key) + len(value))
	if res != nil {
		n += siblings.Bytes(res.Set)
	}
	return n
}

// cmdDel deletes what a read at R sees of each key, and what the
// coordinator holds (quorum.Coordinator.Overwrite), as HTTP's DELETE without a
// context does. A key the read found no live value of is left alone.
func (c *conn) cmdDel(args [][]byte) {
	c.countKeys("delete", args[1:], func(key []byte, p quorum.Params) (bool, int64, error) {
		res, err := c.write("delete", key, nil, true, nil, true, p)
		if err != nil || res == nil {
			return false, writeCost(key, nil, res), err
		}
		c.s.stats.deletesSent.Add(1)
		return true, writeCost(key, nil, res), nil
	})
}

// cmdExists counts the keys with a live value, reading them through
// each: at most 16 sets read at once, charged to the budget.
func (c *conn) cmdExists(args [][]byte) {
	c.countKeys("get", args[1:], func(key []byte, p quorum.Params) (bool, int64, error) {
		set, err := c.read(key, p)
		return err == nil && !set.IsDeleted(), siblings.Bytes(set), err
	})
}

// countKeys runs fn on each key through each, under the connection's
// parameters fitted to the ring, and answers how many keys fn counted, or
// the first error as op's. fn returns whether it counts key and the most
// it held (each's peak).
func (c *conn) countKeys(op string, keys [][]byte, fn func(key []byte, p quorum.Params) (counted bool, peak int64, err error)) {
	p, err := c.fitted(c.params)
	var n atomic.Int64
	if err == nil {
		err = c.each(len(keys), func(i int) (int64, error) {
			counted, peak, err := fn(keys[i], p)
			if counted {
				n.Add(1)
			}
			return peak, err
		})
	}
	if err != nil {
		c.writeErr(op, err)
		return
	}
	c.integer(n.Load())
}

// cmdMGet streams its answer (multikey.Run): at most 16 keys in flight
// and 16 MiB reserved or held, charged to the node's budget, each value
// written as soon as it and those before it are in, so naming a huge key
// many times holds one copy at a time, not one per name. An error on the
// first key is the command's; on a later one it is an error element of
// the array, whose start is already on the wire.
func (c *conn) cmdMGet(args [][]byte) {
	keys := args[1:]
	p, err := c.fitted(c.params)
	if err != nil {
		c.writeErr("get", err)
		return
	}
	type picked struct {
		v    vclock.Value
		live int
	}
	started := false
	err = multikey.Run(c.s.ctx, multikey.Config{Budget: c.s.cfg.Budget, Parallel: multiParallel, Shared: &c.s.multiEstimate}, len(keys),
		func(_ context.Context, i int) (picked, multikey.Cost, error) {
			set, err := c.read(keys[i], p)
			if err != nil {
				return picked{}, multikey.Cost{}, err
			}
			v, live := pick(set)
			return picked{v, live}, multikey.Cost{Held: int64(len(v.Data)), Peak: siblings.Bytes(set)}, nil
		},
		func(i int, it picked, err error) error {
			if i == 0 {
				if err != nil {
					return err
				}
				c.array(len(keys))
				started = true
			}
			switch {
			case err != nil:
				c.writeErr("get", err)
			case it.live == 0:
				c.observeRead(0)
				c.null()
			default:
				c.observeRead(it.live)
				c.bulk(it.v.Data)
			}
			if len(c.out) >= flushAt {
				return c.flush()
			}
			return nil
		})
	switch {
	case err != nil && !started:
		c.writeErr("get", err)
	case err != nil:
		// The array is cut short: the stream cannot be resynchronised.
		c.quit = true
	}
}

func (c *conn) cmdMSet(args [][]byte) {
	kv := args[1:]
	if len(kv)%2 != 0 {
		c.errorf("ERR wrong number of arguments for 'mset' command")
		return
	}
	pairs := len(kv) / 2
	for i := range pairs {
		if err := c.checkKey(kv[2*i]); err != nil {
			c.writeErr("put", err)
			return
		}
		if len(kv[2*i+1]) > c.s.cfg.MaxValueSize {
			c.writeErr("put", &tooLargeError{size: len(kv[2*i+1]), limit: c.s.cfg.MaxValueSize})
			return
		}
	}
	var written atomic.Int64
	p, err := c.fitted(c.params)
	if err != nil {
		c.writeErr("put", err)
		return
	}
	err = c.each(pairs, func(i int) (int64, error) {
		res, err := c.write("put", kv[2*i], kv[2*i+1], false, nil, true, p)
		if err == nil {
			written.Add(1)
		}
		return writeCost(kv[2*i], kv[2*i+1], res), err
	})
	if err != nil {
		if w := written.Load(); w > 0 {
			err = fmt.Errorf("%w (%d of %d pairs written: MSET is not atomic)", err, w, pairs)
		}
		c.writeErr("put", err)
		return
	}
	c.s.stats.setsSuperseding.Add(uint64(pairs))
	c.ok()
}

func (c *conn) cmdQGet(args [][]byte) {
	set, base, ok := c.readOne(args)
	if !ok {
		return
	}
	defer c.keepReply(base, len(c.out))
	c.s.cfg.SiblingsPerRead.Observe(float64(len(set.Live())))
	c.array(2)
	c.bulkString(c.s.cfg.Contexts.EncodeContext(set.Context))
	c.array(len(set.Siblings))
	for _, sib := range set.Siblings {
		c.array(5)
		if sib.Value.Deleted {
			c.null()
		} else {
			c.bulk(sib.Value.Data)
		}
		c.bulkString(vclock.EncodeDot(sib.Dot))
		c.integer(sib.Value.Timestamp / 1e6)
		if sib.Value.Deleted {
			c.integer(1)
		} else {
			c.integer(0)
		}
		c.bulkString(sib.Value.ContentType)
	}
}

// contextOf decodes a CONTEXT option (a token a read returned).
func (c *conn) contextOf(o parsedOptions) (vclock.Vector, error) {
	if !o.hasContext {
		return nil, nil
	}
	v, err := c.s.cfg.Contexts.DecodeContext(o.context)
	if err != nil {
		return nil, &quorum.ParamError{Param: "context", Msg: fmt.Sprintf("malformed context: %v (send back exactly what QGET returned)", err)}
	}
	return v, nil
}

func (c *conn) cmdQSet(args [][]byte) {
	c.qwrite("put", args[1], args[2], false, args[3:])
}

func (c *conn) cmdQDel(args [][]byte) {
	c.qwrite("delete", args[1], nil, true, args[2:])
}

func (c *conn) qwrite(op string, key, value []byte, deleted bool, opts [][]byte) {
	o, err := c.options(opts, writeOpts|optContext)
	if err != nil {
		c.writeErr(op, err)
		return
	}
	vctx, err := c.contextOf(o)
	if err != nil {
		c.writeErr(op, err)
		return
	}
	res, err := c.write(op, key, value, deleted, vctx, false, o.p)
	if err != nil {
		c.writeErr(op, err)
		return
	}
	c.s.stats.qsets.Add(1)
	c.array(2)
	c.bulkString(c.s.cfg.Contexts.EncodeContext(res.Set.Context))
	c.integer(int64(len(res.Set.Siblings)))
}

func (c *conn) cmdQuorum(args [][]byte) {
	d := c.s.cfg.Defaults
	switch {
	case len(args) == 1:
		p := mergeParams(c.params, quorum.Params{}).WithDefaults(d)
		c.array(14)
		for _, f := range []struct {
			name string
			v    int64
		}{{"n", int64(p.N)}, {"r", int64(p.R)}, {"w", int64(p.W)}, {"pr", int64(p.PR)}, {"pw", int64(p.PW)},
			{"dw", int64(p.DW)}, {"timeout", p.Timeout.Milliseconds()}} {
			c.bulkString(f.name)
			c.integer(f.v)
		}
		return
	case len(args) == 2 && strings.EqualFold(string(args[1]), "reset"):
		c.params = quorum.Params{}
		c.ok()
		return
	}
	o, err := parseOptions(args[1:], quorumOpts, c.s.b.DefaultN())
	if err != nil {
		c.writeErr("quorum", err)
		return
	}
	fitted, err := c.fitted(o.p)
	if err == nil {
		err = c.s.b.Check(fitted)
	}
	if err != nil {
		c.writeErr("quorum", err)
		return
	}
	c.params = o.p
	c.ok()
}

func (c *conn) cmdPing(args [][]byte) {
	switch len(args) {
	case 1:
		c.status("PONG")
	case 2:
		c.bulk(args[1])
	default:
		c.errorf("ERR wrong number of arguments for 'ping' command")
	}
}

func (c *conn) cmdEcho(args [][]byte) { c.bulk(args[1]) }

func (c *conn) cmdQuit(args [][]byte) {
	c.ok()
	c.quit = true
}

func (c *conn) cmdSelect(args [][]byte) {
	if string(args[1]) != "0" {
		c.errorf("ERR DB index is out of range (quorumkv has one keyspace: 0)")
		return
	}
	c.ok()
}

// cmdHello speaks RESP2 only: "HELLO 3" is refused with NOPROTO, which
// makes clients (go-redis) fall back to RESP2.
func (c *conn) cmdHello(args [][]byte) {
	rc, err := auth.ParseRESP(args)
	if err != nil {
		c.respError(err)
		return
	}
	if rc.Proto == 3 {
		// RESP2 only; Redis clients then fall back to AUTH.
		c.errorf("NOPROTO this server speaks RESP2 only")
		return
	}
	switch {
	case rc.HasAuth:
		if !c.login(rc) {
			return
		}
	case !c.authed:
		c.errorf("%s", auth.ReplyHelloNoAuth)
		return
	}
	if rc.HasSetName {
		c.name = rc.SetName
	}
	c.array(14)
	for _, kv := range []struct{ k, v string }{{"server", "quorumkv"}, {"version", c.s.cfg.Version}} {
		c.bulkString(kv.k)
		c.bulkString(kv.v)
	}
	c.bulkString("proto")
	c.integer(2)
	c.bulkString("id")
	c.integer(c.id)
	c.bulkString("mode")
	c.bulkString("standalone")
	c.bulkString("role")
	c.bulkString("master")
	c.bulkString("modules")
	c.array(0)
}

func (c *conn) cmdClient(args [][]byte) {
	sub := strings.ToLower(string(args[1]))
	switch {
	case sub == "setname" && len(args) == 3:
		if strings.ContainsAny(string(args[2]), " \n") {
			c.errorf("ERR Client names cannot contain spaces, newlines or special characters.")
			return
		}
		c.name = string(args[2])
		c.ok()
	case sub == "getname" && len(args) == 2:
		if c.name == "" {
			c.null()
		} else {
			c.bulkString(c.name)
		}
	case sub == "setinfo" && len(args) == 4:
		c.ok()
	case sub == "id" && len(args) == 2:
		c.integer(c.id)
	case sub == "info" && len(args) == 2:
		c.bulkString(fmt.Sprintf("id=%d addr=%s name=%s\n", c.id, c.nc.RemoteAddr(), c.name))
	default:
		c.errorf("ERR unknown subcommand or wrong number of arguments for 'client|%s' (quorumkv supports SETNAME, GETNAME, SETINFO, ID, INFO)", clip(args[1]))
	}
}

// configParams answers CONFIG GET, which redis-benchmark asks at start.
var configParams = [][2]string{{"appendonly", "no"}, {"databases", "1"}, {"save", ""}}

func (c *conn) cmdConfig(args [][]byte) {
	if !strings.EqualFold(string(args[1]), "get") || len(args) < 3 {
		c.errorf("ERR quorumkv supports only CONFIG GET parameter [parameter ...]")
		return
	}
	var out [][2]string
	for _, kv := range configParams {
		for _, pat := range args[2:] {
			if redconMatch(kv[0], strings.ToLower(string(pat))) {
				out = append(out, kv)
				break
			}
		}
	}
	c.array(2 * len(out))
	for _, kv := range out {
		c.bulkString(kv[0])
		c.bulkString(kv[1])
	}
}

// redconMatch is Redis's glob match for CONFIG GET patterns ("*", "?").
func redconMatch(s, pat string) bool {
	if pat == "" {
		return s == ""
	}
	switch pat[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if redconMatch(s[i:], pat[1:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && redconMatch(s[1:], pat[1:])
	}
	return s != "" && s[0] == pat[0] && redconMatch(s[1:], pat[1:])
}

func (c *conn) cmdCommand(args [][]byte) {
	sub := ""
	if len(args) > 1 {
		sub = strings.ToLower(string(args[1]))
	}
	all := c.s.sortedCommands()
	switch sub {
	case "":
		c.array(len(all))
		for _, cmd := range all {
			c.commandInfo(cmd)
		}
	case "count":
		c.integer(int64(len(all)))
	case "info":
		c.array(len(args) - 2)
		for _, a := range args[2:] {
			if cmd := c.s.cmd[strings.ToLower(string(a))]; cmd != nil {
				c.commandInfo(cmd)
			} else {
				c.null()
			}
		}
	case "docs":
		// redis-cli falls back to its built-in help on an error here.
		c.errorf("ERR quorumkv does not implement COMMAND DOCS")
	default:
		c.errorf("ERR unknown subcommand '%s' of COMMAND (quorumkv supports COUNT, INFO)", clip(args[1]))
	}
}

// commandInfo writes the classic six-field COMMAND entry.
func (c *conn) commandInfo(cmd *command) {
	c.array(6)
	c.bulkString(cmd.name)
	c.integer(int64(cmd.arity))
	c.array(len(cmd.flags))
	for _, f := range cmd.flags {
		c.status(f)
	}
	c.integer(int64(cmd.firstKey))
	c.integer(int64(cmd.lastKey))
	c.integer(int64(cmd.step))
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }
