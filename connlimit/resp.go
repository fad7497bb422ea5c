package connlimit

import (
	"fmt"
	"time"
)

// RESPTimeouts are the read limits of a RESP (Redis protocol) connection.
type RESPTimeouts struct {
	// Idle closes a connection that sends nothing between commands: it
	// frees the slot and the read buffer of clients that went away
	// without closing. Connection pools reconnect on their own.
	Idle time.Duration
	// Command is the pace of one command once its first byte arrived: a
	// half-sent command holds its bytes in a buffer, so it must keep
	// arriving at BodyPace.
	Command Pace
	// MaxCommand bounds the time one command may take to arrive, however
	// steadily (zero: none).
	MaxCommand time.Duration
}

// DefaultRESPTimeouts: 5 minutes idle (Redis's own default is never, but
// Redis has no per-command memory to protect; pools reconnect on their
// own), commands at BodyPace, and at most 2 minutes per command (a 12 MiB
// command needs 100 KiB/s to make it).
func DefaultRESPTimeouts() RESPTimeouts {
	return RESPTimeouts{Idle: 5 * time.Minute, Command: BodyPace, MaxCommand: 2 * time.Minute}
}

// Validate reports a bad field.
func (r RESPTimeouts) Validate() error {
	if r.Idle <= 0 || r.MaxCommand < 0 {
		return fmt.Errorf("connlimit: RESP idle timeout %v must be > 0 and max command time %v >= 0", r.Idle, r.MaxCommand)
	}
	return r.Command.Validate()
}

// CommandTimer computes a RESP connection's read deadline: between
// commands the idle timeout, and once a command has started arriving, its
// pace and MaxCommand. It does no I/O; the connection's loop asks it for
// the deadline before each read (the RESP reader's fill) and sets it on
// the socket when it changed. Not safe for concurrent use: one per
// connection.
//
//	// before each fill:
//	if d, ok := t.Deadline(time.Now(), rd.buffered()); ok {
//		nc.SetReadDeadline(d)
//	}
//	// after each complete command:
//	t.CommandDone()
//	// when a read times out:
//	err := t.Expired(time.Now()) // *SlowError mid-command, ErrIdle between
type CommandTimer struct {
	cfg   RESPTimeouts
	inCmd bool
	c     credit
	seen  int // buffered bytes of the current command at the last call
	armed time.Time
}

// NewCommandTimer returns a timer for one connection.
func NewCommandTimer(cfg RESPTimeouts) *CommandTimer {
	return &CommandTimer{cfg: cfg, c: credit{pace: cfg.Command}}
}

// ErrIdle ends a connection that was idle for RESPTimeouts.Idle.
var ErrIdle = fmt.Errorf("connlimit: connection idle too long")

// Deadline returns the read deadline to set before the next read, given
// the bytes of an unfinished command already buffered (0: between
// commands), and whether it changed since the last call (setting a
// deadline costs a timer update). The deadline returned is never before
// the true one, so a timeout is always real, and at most 1/16 of the idle
// timeout or of the command pace's window after it.
func (t *CommandTimer) Deadline(now time.Time, buffered int) (time.Time, bool) {
	var d, hard time.Time
	var slack time.Duration
	if buffered <= 0 {
		t.inCmd = false
		d, slack = now.Add(t.cfg.Idle), t.cfg.Idle/16
	} else {
		if !t.inCmd {
			t.inCmd, t.seen = true, 0
			var limit time.Time
			if t.cfg.MaxCommand > 0 {
				limit = now.Add(t.cfg.MaxCommand)
			}
			t.c.begin(now, limit)
		}
		if buffered > t.seen {
			t.c.add(buffered-t.seen, now)
		}
		t.seen = buffered
		d, slack, hard = t.c.deadline(), t.cfg.Command.rearmSlack(), t.c.hard
	}
	a, changed := arm(t.armed, d, slack, hard)
	t.armed = a
	return a, changed
}

// CommandDone tells the timer a command was complete: the next bytes
// start a new one.
func (t *CommandTimer) CommandDone() { t.inCmd = false }

// Expired returns the error for a read that timed out at now: a
// *SlowError if a command was arriving, ErrIdle otherwise.
func (t *CommandTimer) Expired(now time.Time) error {
	if t.inCmd {
		return t.c.fail(now, nil)
	}
	return ErrIdle
}

// DefaultPartialBytes is the cap on bytes buffered for unfinished RESP
// commands across all connections, given the node's budget and the
// largest command: an eighth of the budget, and room for at least four
// of the largest commands. Connections beyond it wait to grow their
// buffers (membudget.Hold.Resize on a budget with this limit whose parent
// is the node's), and are cut by their command pace if the wait is long.
func DefaultPartialBytes(budget int64, maxCommand int) int64 {
	return max(budget/8, 4*int64(maxCommand))
}
