package resp

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/vclock"
)

// Expiry on the RESP front (docs/ARCHITECTURE.md, "Expiry: values with a
// deadline"): SET's EX, PX, EXAT, PXAT and KEEPTTL; EXPIRE and PEXPIRE
// (with NX, XX, GT, LT), PERSIST, TTL and PTTL. Each command that changes
// a deadline is a causal write of the value a read at R found (the one GET
// answers), with the read's context: it supersedes what that read saw. A
// relative time to live is stamped by the coordinating node's clock, an
// absolute one is taken as given.

// expiry is the deadline a write gives its value: a time to live for the
// coordinator to stamp, or an absolute deadline; neither: none.
type expiry struct {
	ttl time.Duration // EX, PX, EXPIRE, PEXPIRE
	at  int64         // EXAT, PXAT: Unix nanoseconds
}

// setCond is SET's NX or XX condition.
type setCond uint8

const (
	setAlways setCond = iota
	setNX             // only if the key holds no live value
	setXX             // only if it does
)

// setArgs are SET's Redis options, parsed from the arguments after key
// and value; the quorum options (NAME value pairs) are left in rest, in
// order, for parseOptions.
type setArgs struct {
	exp     expiry
	keepTTL bool
	// cond and get are parsed for the create-only writes of issue 18;
	// SET does not act on them yet (cmdSet refuses them).
	cond setCond
	get  bool
	rest [][]byte
}

// parseSetArgs parses SET's [EX s | PX ms | EXAT unix-s | PXAT unix-ms |
// KEEPTTL] [NX | XX] [GET] among its quorum options, names
// case-insensitive, as Redis does: conflicting options are a syntax error,
// and a time that is not a positive integer, or whose deadline would pass
// the year 2262, an invalid expire time.
func parseSetArgs(args [][]byte) (setArgs, error) {
	var a setArgs
	var expOpt string // the expiry option given, for conflicts
	for i := 0; i < len(args); i++ {
		name := strings.ToLower(string(args[i]))
		switch name {
		case "nx", "xx":
			if a.cond != setAlways {
				return a, syntax("NX and XX given together or twice")
			}
			a.cond = setNX
			if name == "xx" {
				a.cond = setXX
			}
		case "get":
			if a.get {
				return a, syntax("GET given twice")
			}
			a.get = true
		case "keepttl", "ex", "px", "exat", "pxat":
			if expOpt != "" {
				return a, syntax("%s and %s given together", strings.ToUpper(expOpt), strings.ToUpper(name))
			}
			expOpt = name
			if name == "keepttl" {
				a.keepTTL = true
				continue
			}
			if i+1 == len(args) {
				return a, syntax("option %s needs a value", strings.ToUpper(name))
			}
			i++
			var err error
			if a.exp, err = parseExpiry(name, args[i]); err != nil {
				return a, err
			}
		default:
			a.rest = append(a.rest, args[i])
			if i+1 < len(args) {
				i++
				a.rest = append(a.rest, args[i])
			}
		}
	}
	return a, nil
}

// parseExpiry reads the value of SET's EX, PX, EXAT or PXAT.
func parseExpiry(opt string, v []byte) (expiry, error) {
	unit := time.Second
	if opt == "px" || opt == "pxat" {
		unit = time.Millisecond
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/int64(unit) {
		return expiry{}, invalidExpire("set")
	}
	if opt == "exat" || opt == "pxat" {
		return expiry{at: n * int64(unit)}, nil
	}
	return expiry{ttl: time.Duration(n) * unit}, nil
}

// invalidExpire is Redis's answer to a bad time: "ERR invalid expire time
// in 'cmd' command", as a parameter error.
func invalidExpire(cmd string) error {
	return &quorum.ParamError{Param: "expire", Msg: fmt.Sprintf("invalid expire time in '%s' command", cmd)}
}

// expireCond is EXPIRE's NX, XX, GT or LT.
type expireCond uint8

const (
	expireAlways expireCond = iota
	expireNX                // only if the value has no deadline
	expireXX                // only if it has one
	expireGT                // only if the new deadline is later (none counts as infinite)
	expireLT                // only if it is earlier (none counts as infinite)
)

// allows reports whether EXPIRE with condition e may move a deadline from
// cur (0: none) to next, by Redis's rules.
func (e expireCond) allows(cur, next int64) bool {
	switch e {
	case expireNX:
		return cur == 0
	case expireXX:
		return cur != 0
	case expireGT:
		return cur != 0 && next > cur
	case expireLT:
		return cur == 0 || next < cur
	}
	return true
}

// parseExpireCond reads EXPIRE's leading condition flags and returns the
// quorum options after them.
func parseExpireCond(args [][]byte) (expireCond, [][]byte, error) {
	cond := expireAlways
	for len(args) > 0 {
		var c expireCond
		switch strings.ToLower(string(args[0])) {
		case "nx":
			c = expireNX
		case "xx":
			c = expireXX
		case "gt":
			c = expireGT
		case "lt":
			c = expireLT
		default:
			return cond, args, nil
		}
		if cond != expireAlways {
			return cond, nil, syntax("NX, XX, GT and LT options at the same time are not compatible")
		}
		cond, args = c, args[1:]
	}
	return cond, args, nil
}

// remaining is what TTL (unit time.Second) and PTTL (time.Millisecond)
// answer for a value with deadline at (0: none) read at now: -1 without a
// deadline, else the time left, seconds rounded as Redis rounds them.
func remaining(at, now int64, unit time.Duration) int64 {
	if at == 0 {
		return -1
	}
	ms := max(at-now, 0) / int64(time.Millisecond)
	if unit == time.Second {
		return (ms + 500) / 1000
	}
	return ms
}

// now is the node's clock.
func (c *conn) now() time.Time { return c.s.cfg.Now() }

// cmdTTL and cmdPTTL answer the time to live of the value GET would
// return: -2 when the key holds no live value, -1 when it has no deadline.
func (c *conn) cmdTTL(args [][]byte)  { c.ttl(args, "ttl", time.Second) }
func (c *conn) cmdPTTL(args [][]byte) { c.ttl(args, "pttl", time.Millisecond) }

func (c *conn) ttl(args [][]byte, op string, unit time.Duration) {
	o, err := c.options(args[2:], readOpts)
	if err != nil {
		c.writeErr(op, err)
		return
	}
	set, err := c.read(args[1], o.p)
	if err != nil {
		c.writeErr(op, err)
		return
	}
	v, live := pick(set)
	if live == 0 {
		c.integer(-2)
		return
	}
	c.integer(remaining(v.Expires, c.now().UnixNano(), unit))
}

// cmdExpire and cmdPExpire give the value GET would return a time to live
// of seconds or milliseconds: a causal write of that value with the new
// deadline (a time that is not positive deletes it, as in Redis). They
// answer 1 when they wrote, 0 when the key holds no live value or the
// condition (NX, XX, GT, LT) refused.
func (c *conn) cmdExpire(args [][]byte)  { c.expire(args, "expire", time.Second) }
func (c *conn) cmdPExpire(args [][]byte) { c.expire(args, "pexpire", time.Millisecond) }

func (c *conn) expire(args [][]byte, op string, unit time.Duration) {
	n, err := strconv.ParseInt(string(args[2]), 10, 64)
	if err != nil {
		c.writeErr(op, &quorum.ParamError{Param: "expire", Msg: "value is not an integer or out of range"})
		return
	}
	if n > math.MaxInt64/int64(unit) {
		c.writeErr(op, invalidExpire(op))
		return
	}
	cond, rest, err := parseExpireCond(args[3:])
	if err == nil {
		var o parsedOptions
		if o, err = c.options(rest, quorumOpts); err == nil {
			ttl := time.Duration(n) * unit
			now := c.now().UnixNano()
			if ttl > 0 && now > math.MaxInt64-int64(ttl) {
				err = invalidExpire(op)
			} else {
				c.rewrite(op, args[1], o.p, func(v vclock.Value) (vclock.Value, expiry, bool) {
					if !cond.allows(v.Expires, now+int64(ttl)) {
						return v, expiry{}, false
					}
					if ttl <= 0 {
						return vclock.Value{Deleted: true}, expiry{}, true
					}
					return v, expiry{ttl: ttl}, true
				})
				return
			}
		}
	}
	c.writeErr(op, err)
}

// cmdPersist removes the deadline of the value GET would return (a causal
// write of it without one): 1 when it did, 0 when the key holds no live
// value or its value has no deadline.
func (c *conn) cmdPersist(args [][]byte) {
	o, err := c.options(args[2:], quorumOpts)
	if err != nil {
		c.writeErr("persist", err)
		return
	}
	c.rewrite("persist", args[1], o.p, func(v vclock.Value) (vclock.Value, expiry, bool) {
		return v, expiry{}, v.Expires != 0
	})
}

// setKeepTTL is SET ... KEEPTTL: a read at p's R finds the deadline of the
// value GET would return (none if the key holds no live value), and the
// write supersedes what that read saw with value under that deadline.
func (c *conn) setKeepTTL(key, value []byte, p quorum.Params) {
	set, err := c.read(key, p)
	if err != nil {
		c.writeErr("put", err)
		return
	}
	cur, _ := pick(set)
	p.R, p.PR = 0, 0 // the read's; the write has its own
	if _, err := c.writeValue("put", key, vclock.Value{Data: value}, expiry{at: cur.Expires}, set.Context, false, p); err != nil {
		c.writeErr("put", err)
		return
	}
	c.s.stats.setsSuperseding.Add(1)
	c.ok()
}

// rewrite reads key at p's R and, if it holds a live value and fn agrees,
// writes fn's value with fn's deadline over what the read saw (its
// context). It answers 1 when it wrote, else 0.
func (c *conn) rewrite(op string, key []byte, p quorum.Params, fn func(v vclock.Value) (vclock.Value, expiry, bool)) {
	set, err := c.read(key, p)
	if err != nil {
		c.writeErr(op, err)
		return
	}
	v, live := pick(set)
	if live == 0 {
		c.integer(0)
		return
	}
	next, exp, ok := fn(v)
	if !ok {
		c.integer(0)
		return
	}
	p.R, p.PR = 0, 0 // the read's; the write has its own
	if _, err := c.writeValue(op, key, next, exp, set.Context, false, p); err != nil {
		c.writeErr(op, err)
		return
	}
	c.integer(1)
}
