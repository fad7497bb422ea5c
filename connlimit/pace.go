package connlimit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Errors of the paced Reader and Writer; the returned errors are a
// *SlowError, which matches one of them with errors.Is.
var (
	// ErrTooSlow: the transfer fell below its minimum rate (HTTP 408 for
	// a body; the connection is closed).
	ErrTooSlow = errors.New("connlimit: transfer below the minimum rate")
	// ErrDeadline: the transfer passed its absolute deadline.
	ErrDeadline = errors.New("connlimit: transfer past its deadline")
)

// SlowError ends a transfer that was too slow or too long.
type SlowError struct {
	// Bytes moved and the time since the transfer started.
	Bytes   int64
	Elapsed time.Duration
	// Pace is the rule it broke; Deadline is true when the absolute
	// deadline passed rather than the rate.
	Pace     Pace
	Deadline bool
	// Err is the underlying timeout error.
	Err error
}

func (e *SlowError) Error() string {
	if e.Deadline {
		return fmt.Sprintf("transfer past its deadline: %d bytes in %v", e.Bytes, e.Elapsed.Round(time.Millisecond))
	}
	return fmt.Sprintf("transfer too slow: %d bytes in %v; the minimum is %d bytes/s averaged over %v, after %v of grace",
		e.Bytes, e.Elapsed.Round(time.Millisecond), e.Pace.MinRate, e.Pace.Window, e.Pace.Grace)
}

// Is matches ErrTooSlow, or ErrDeadline when Deadline is set.
func (e *SlowError) Is(target error) bool {
	return target == ErrTooSlow && !e.Deadline || target == ErrDeadline && e.Deadline
}

// Unwrap returns the underlying timeout error.
func (e *SlowError) Unwrap() error { return e.Err }

// Pace is a minimum transfer rate, kept as a bucket of time: a transfer
// starts with Grace of credit, every byte adds 1/MinRate seconds, and the
// credit never reaches more than Window past the present; the transfer
// fails when its credit runs out. So a peer moving at least MinRate on
// average over any Window never fails, one that stops is cut Window after
// its last burst at most, and a slowloris (a byte now and then) is cut
// about Grace after it starts, whatever it sent before.
type Pace struct {
	// MinRate is the minimum rate in bytes per second; must be > 0.
	MinRate int64
	// Grace is the credit at the start (time to first bytes, TCP slow
	// start); must be > 0.
	Grace time.Duration
	// Window is the most credit a transfer can bank; must be > 0.
	Window time.Duration
}

// Paces for client transfers. See "Resource limits" in
// docs/ARCHITECTURE.md.
var (
	// BodyPace is for request bodies (and RESP commands): 1 KiB/s averaged
	// over 10 s, after 10 s of grace. A body's memory grows only as its
	// bytes arrive, so a slow body costs a connection slot more than
	// memory; the rate is low enough for any real client.
	BodyPace = Pace{MinRate: 1 << 10, Grace: 10 * time.Second, Window: 10 * time.Second}
	// ReplyPace is for replies: 64 KiB/s over 10 s, after 10 s. A reply
	// is held whole until written, so a client that reads it slowly pins
	// its memory: at this rate the largest reply (a 12 MiB sibling set)
	// is gone within about 3.5 minutes, and a client that reads nothing
	// is cut after 10 s.
	ReplyPace = Pace{MinRate: 64 << 10, Grace: 10 * time.Second, Window: 10 * time.Second}
)

// Validate reports a bad field.
func (p Pace) Validate() error {
	if p.MinRate <= 0 || p.Grace <= 0 || p.Window <= 0 {
		return fmt.Errorf("connlimit: pace %+v: rate, grace and window must all be > 0", p)
	}
	return nil
}

// TimeFor is the longest a transfer of size bytes may take at this pace:
// Grace plus size at MinRate. It is the write timeout for a reply of that
// size when one deadline is set for the whole reply instead of pacing it.
func (p Pace) TimeFor(size int64) time.Duration {
	return p.Grace + time.Duration(float64(max(size, 0))/float64(p.MinRate)*float64(time.Second))
}

// credit is the pure core of a paced transfer: the time its credit runs
// out, and the absolute deadline.
type credit struct {
	pace  Pace
	start time.Time
	due   time.Time // when the credit runs out
	hard  time.Time // absolute deadline; zero: none
	bytes int64
}

func (c *credit) begin(now, hard time.Time) {
	c.start, c.due, c.hard, c.bytes = now, now.Add(c.pace.Grace), hard, 0
}

// add credits n bytes moved at now.
func (c *credit) add(n int, now time.Time) {
	if n <= 0 {
		return
	}
	c.bytes += int64(n)
	c.due = c.due.Add(time.Duration(float64(n) / float64(c.pace.MinRate) * float64(time.Second)))
	if lim := now.Add(c.pace.Window); c.due.After(lim) {
		c.due = lim
	}
}

// deadline is when the transfer fails if nothing more moves.
func (c *credit) deadline() time.Time {
	if !c.hard.IsZero() && c.hard.Before(c.due) {
		return c.hard
	}
	return c.due
}

// fail returns the error for a transfer whose deadline passed at now.
func (c *credit) fail(now time.Time, err error) *SlowError {
	return &SlowError{Bytes: c.bytes, Elapsed: now.Sub(c.start), Pace: c.pace,
		Deadline: !c.hard.IsZero() && !now.Before(c.hard) && c.hard.Before(c.due), Err: err}
}

// rearmSlack is how late a deadline set on the connection may be: setting
// one costs a timer update, so it is set at most this much past the true
// deadline and set again only when the true one leaves that range.
func (p Pace) rearmSlack() time.Duration { return p.Window / 16 }

// arm decides the deadline to set on the connection for the true deadline
// d, given the one set now (armed; zero: none): it keeps armed while it is
// within [d, d+slack], else returns d+slack (but never past hard, when
// set) and true. A deadline set is thus never early, so a timeout is
// always a real one (net/http cancels a request on any read error, so a
// spurious timeout could not be retried), and at most slack late.
func arm(armed, d time.Time, slack time.Duration, hard time.Time) (time.Time, bool) {
	if !armed.IsZero() && !armed.Before(d) && armed.Sub(d) <= slack {
		return armed, false
	}
	a := d.Add(slack)
	if !hard.IsZero() && a.After(hard) {
		a = hard
	}
	return a, true
}

// Reader reads a transfer at a Pace: before each read it sets the
// connection's read deadline to when the credit runs out (or the absolute
// deadline), and turns the resulting timeout into a *SlowError. After a
// *SlowError the passed deadline stays, so the connection is cut (net/http
// closes it after the reply). At EOF, on other errors and on Close it
// clears the deadline it set, so the connection can be used further
// (net/http reads the next request, and a deadline left behind would
// cancel a request that is still being handled). Not safe for concurrent
// use.
type Reader struct {
	r     io.Reader
	set   func(time.Time) error
	c     credit
	armed time.Time
	err   error
	done  bool
}

// NewReader paces r. setDeadline sets the read deadline of the connection
// r reads from: net.Conn.SetReadDeadline, or for an HTTP body
// http.NewResponseController(w).SetReadDeadline. deadline is an absolute
// limit (zero: none). The pace starts now.
func NewReader(r io.Reader, setDeadline func(time.Time) error, p Pace, deadline time.Time) *Reader {
	rd := &Reader{r: r, set: setDeadline, c: credit{pace: p}}
	rd.c.begin(time.Now(), deadline)
	return rd
}

// Read reads from the wrapped reader under the pace.
func (r *Reader) Read(b []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	now := time.Now()
	d := r.c.deadline()
	if !now.Before(d) {
		if err := r.set(now); err != nil { // make sure the connection is cut
			return 0, r.stop(err)
		}
		r.armed = now
		return 0, r.cut(r.c.fail(now, os.ErrDeadlineExceeded))
	}
	if a, ok := arm(r.armed, d, r.c.pace.rearmSlack(), r.c.hard); ok {
		if err := r.set(a); err != nil {
			return 0, r.stop(err)
		}
		r.armed = a
	}
	n, err := r.r.Read(b)
	now = time.Now()
	r.c.add(n, now)
	switch {
	case err == nil:
	case errors.Is(err, os.ErrDeadlineExceeded) && !now.Before(r.armed):
		err = r.cut(r.c.fail(now, err))
	default:
		err = r.stop(err)
	}
	return n, err
}

// cut ends a transfer that broke its pace. The passed deadline stays on
// the connection: the rest of the transfer must not be read as the next
// request, and net/http, finding it cannot drain the body, closes the
// connection after the reply.
func (r *Reader) cut(err error) error {
	r.err, r.done = err, true
	return err
}

// Bytes returns the bytes read so far.
func (r *Reader) Bytes() int64 { return r.c.bytes }

// stop remembers err (EOF or the connection's own error) and clears the
// deadline.
func (r *Reader) stop(err error) error {
	r.err = err
	r.clear()
	return err
}

func (r *Reader) clear() {
	if !r.done {
		r.done = true
		if !r.armed.IsZero() {
			_ = r.set(time.Time{})
		}
	}
}

// Close clears the read deadline (if the transfer did not end already)
// and stops further reads. It does not close the wrapped reader.
func (r *Reader) Close() error {
	if r.err == nil {
		r.err = io.ErrClosedPipe
	}
	r.clear()
	return nil
}

// writeChunk is the most a paced Writer writes under one deadline, so a
// large reply to a slow reader is cut on time rather than after one long
// write.
const writeChunk = 64 << 10

// Writer writes a transfer at a Pace, as Reader reads one: large writes
// are split into chunks, each under the write deadline of the credit.
// After a *SlowError the passed deadline stays (the reply cannot be
// completed; the connection closes); at Close or on another error it
// clears the deadline it set. Not safe for concurrent use.
type Writer struct {
	w     io.Writer
	set   func(time.Time) error
	c     credit
	armed time.Time
	err   error
	done  bool
}

// NewWriter paces w. setDeadline sets the write deadline of the
// connection w writes to (net.Conn.SetWriteDeadline, or
// http.NewResponseController(w).SetWriteDeadline); deadline is an
// absolute limit (zero: none). The pace starts now.
func NewWriter(w io.Writer, setDeadline func(time.Time) error, p Pace, deadline time.Time) *Writer {
	wr := &Writer{w: w, set: setDeadline, c: credit{pace: p}}
	wr.c.begin(time.Now(), deadline)
	return wr
}

// Write writes b in chunks under the pace.
func (w *Writer) Write(b []byte) (int, error) {
	written := 0
	for written < len(b) {
		if w.err != nil {
			return written, w.err
		}
		now := time.Now()
		d := w.c.deadline()
		if !now.Before(d) {
			if err := w.set(now); err != nil {
				return written, w.stop(err)
			}
			w.armed = now
			return written, w.cut(w.c.fail(now, os.ErrDeadlineExceeded))
		}
		if a, ok := arm(w.armed, d, w.c.pace.rearmSlack(), w.c.hard); ok {
			if err := w.set(a); err != nil {
				return written, w.stop(err)
			}
			w.armed = a
		}
		chunk := b[written:min(len(b), written+writeChunk)]
		n, err := w.w.Write(chunk)
		now = time.Now()
		w.c.add(n, now)
		written += n
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded) && !now.Before(w.armed):
			return written, w.cut(w.c.fail(now, err))
		default:
			return written, w.stop(err)
		}
	}
	return written, nil
}

// Bytes returns the bytes written so far.
func (w *Writer) Bytes() int64 { return w.c.bytes }

// cut ends a transfer that broke its pace, leaving the passed deadline
// on the connection (see Reader.cut): the reply cannot be completed.
func (w *Writer) cut(err error) error {
	w.err, w.done = err, true
	return err
}

func (w *Writer) stop(err error) error {
	w.err = err
	w.clear()
	return err
}

func (w *Writer) clear() {
	if !w.done {
		w.done = true
		if !w.armed.IsZero() {
			_ = w.set(time.Time{})
		}
	}
}

// Close clears the write deadline and stops further writes. It does not
// close or flush the wrapped writer.
func (w *Writer) Close() error {
	if w.err == nil {
		w.err = io.ErrClosedPipe
	}
	w.clear()
	return nil
}
