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
	r io.Reader
	paced
}

// NewReader paces r. setDeadline sets the read deadline of the connection
// r reads from: net.Conn.SetReadDeadline, or for an HTTP body
// http.NewResponseController(w).SetReadDeadline. deadline is an absolute
// limit (zero: none). The pace starts now.
func NewReader(r io.Reader, setDeadline func(time.Time) error, p Pace, deadline time.Time) *Reader {
	return &Reader{r: r, paced: newPaced(setDeadline, p, deadline)}
}

// Read reads from the wrapped reader under the pace.
func (r *Reader) Read(b []byte) (int, error) {
	if err := r.ready(); err != nil {
		return 0, err
	}
	n, err := r.r.Read(b)
	return n, r.moved(n, err)
}

// Bytes returns the bytes read so far.
func (r *Reader) Bytes() int64 { return r.c.bytes }

// Close clears the read deadline (if the transfer did not end already)
// and stops further reads. It does not close the wrapped reader.
func (r *Reader) Close() error {
	r.close()
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
	w io.Writer
	paced
}

// NewWriter paces w. setDeadline sets the write deadline of the
// connection w writes to (net.Conn.SetWriteDeadline, or
// http.NewResponseController(w).SetWriteDeadline); deadline is an
// absolute limit (zero: none). The pace starts now.
func NewWriter(w io.Writer, setDeadline func(time.Time) error, p Pace, deadline time.Time) *Writer {
	return &Writer{w: w, paced: newPaced(setDeadline, p, deadline)}
}

// Write writes b in chunks under the pace.
func (w *Writer) Write(b []byte) (int, error) {
	written := 0
	for written < len(b) {
		if err := w.ready(); err != nil {
			return written, err
		}
		n, err := w.w.Write(b[written:min(len(b), written+writeChunk)])
		written += n
		if err := w.moved(n, err); err != nil {
			return written, err
		}
	}
	return written, nil
}

// Bytes returns the bytes written so far.
func (w *Writer) Bytes() int64 { return w.c.bytes }

// Close clears the write deadline and stops further writes. It does not
// close or flush the wrapped writer.
func (w *Writer) Close() error {
	w.close()
	return nil
}

// paced is what Reader and Writer share: the credit of the transfer, the
// deadline armed on the connection, and how the transfer ended.
type paced struct {
	set   func(time.Time) error
	c     credit
	armed time.Time
	err   error
	done  bool
}

func newPaced(setDeadline func(time.Time) error, p Pace, deadline time.Time) paced {
	pc := paced{set: setDeadline, c: credit{pace: p}}
	pc.c.begin(time.Now(), deadline)
	return pc
}

// ready prepares the next read or write: it sets the connection's deadline
// to when the credit runs out, or cuts the transfer if it has already.
// A non-nil error ends the transfer.
func (p *paced) ready() error {
	if p.err != nil {
		return p.err
	}
	now := time.Now()
	d := p.c.deadline()
	if !now.Before(d) {
		if err := p.set(now); err != nil { // make sure the connection is cut
			return p.stop(err)
		}
		p.armed = now
		return p.cut(p.c.fail(now, os.ErrDeadlineExceeded))
	}
	if a, ok := arm(p.armed, d, p.c.pace.rearmSlack(), p.c.hard); ok {
		if err := p.set(a); err != nil {
			return p.stop(err)
		}
		p.armed = a
	}
	return nil
}

// moved counts the n bytes a read or write moved and turns its error into
// the transfer's: a timeout of the armed deadline is a *SlowError, any
// other error (EOF included) ends the transfer and clears the deadline.
func (p *paced) moved(n int, err error) error {
	now := time.Now()
	p.c.add(n, now)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded) && !now.Before(p.armed):
		return p.cut(p.c.fail(now, err))
	default:
		return p.stop(err)
	}
}

// cut ends a transfer that broke its pace. The passed deadline stays on
// the connection: the rest of the transfer must not be read as the next
// request (net/http, finding it cannot drain the body, closes the
// connection after the reply), and a reply that cannot be completed
// closes it.
func (p *paced) cut(err error) error {
	p.err, p.done = err, true
	return err
}

// stop remembers err (EOF or the connection's own error) and clears the
// deadline.
func (p *paced) stop(err error) error {
	p.err = err
	p.clear()
	return err
}

func (p *paced) clear() {
	if !p.done {
		p.done = true
		if !p.armed.IsZero() {
			_ = p.set(time.Time{})
		}
	}
}

// close stops further transfers and clears the deadline unless the
// transfer ended already.
func (p *paced) close() {
	if p.err == nil {
		p.err = io.ErrClosedPipe
	}
	p.clear()
}
