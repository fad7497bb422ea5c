package connlimit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/nettest"
)

var t0 = time.Unix(1_000_000, 0)

func at(d time.Duration) time.Time { return t0.Add(d) }

// TestCreditModel checks the pace's arithmetic: a steady sender at the
// minimum rate is never cut, a slowloris is cut about Grace after the
// start, a sender that stops after a burst is cut Window later, and the
// absolute deadline binds.
func TestCreditModel(t *testing.T) {
	p := Pace{MinRate: 1024, Grace: 10 * time.Second, Window: 10 * time.Second}
	t.Run("steady at the minimum rate", func(t *testing.T) {
		var c credit
		c.pace = p
		c.begin(t0, time.Time{})
		for s := 1; s <= 600; s++ {
			now := at(time.Duration(s) * time.Second)
			if !now.Before(c.deadline()) {
				t.Fatalf("cut at %ds", s)
			}
			c.add(1024, now)
		}
	})
	t.Run("slowloris: a byte every 2 s", func(t *testing.T) {
		var c credit
		c.pace = p
		c.begin(t0, time.Time{})
		s := 0
		for ; ; s += 2 {
			now := at(time.Duration(s) * time.Second)
			if !now.Before(c.deadline()) {
				break
			}
			c.add(1, now)
		}
		if cut := c.deadline().Sub(t0); cut < p.Grace || cut > p.Grace+10*time.Millisecond {
			t.Fatalf("credit ran out %v after the start, want Grace (+ a few ms for 5 bytes)", cut)
		}
	})
	t.Run("burst then silence", func(t *testing.T) {
		var c credit
		c.pace = p
		c.begin(t0, time.Time{})
		c.add(100<<20, at(time.Second)) // 100 MiB at once buys at most Window
		if got := c.deadline().Sub(at(time.Second)); got != p.Window {
			t.Fatalf("banked %v, want the window %v", got, p.Window)
		}
	})
	t.Run("half the rate is cut once the grace is spent", func(t *testing.T) {
		var c credit
		c.pace = p
		c.begin(t0, time.Time{})
		var s int
		for s = 1; s < 100; s++ {
			now := at(time.Duration(s) * time.Second)
			if !now.Before(c.deadline()) {
				break
			}
			c.add(512, now)
		}
		if s != 19 {
			t.Fatalf("cut at %ds, want 19s (10 s of grace, then half a second gained per second)", s)
		}
	})
	t.Run("absolute deadline", func(t *testing.T) {
		var c credit
		c.pace = p
		c.begin(t0, at(3*time.Second))
		c.add(1<<20, at(time.Second))
		if got := c.deadline(); !got.Equal(at(3 * time.Second)) {
			t.Fatalf("deadline %v, want the absolute one", got.Sub(t0))
		}
		e := c.fail(at(3*time.Second), nil)
		if !errors.Is(e, ErrDeadline) || errors.Is(e, ErrTooSlow) || !e.Deadline {
			t.Fatalf("error %v", e)
		}
		c.begin(t0, at(time.Hour))
		e = c.fail(at(10*time.Second), nil)
		if !errors.Is(e, ErrTooSlow) || errors.Is(e, ErrDeadline) || !strings.Contains(e.Error(), "the minimum is 1024 bytes/s") {
			t.Fatalf("error %v", e)
		}
	})
	if got := ReplyPace.TimeFor(12 << 20); got != 10*time.Second+192*time.Second {
		t.Fatalf("TimeFor(12 MiB) = %v", got)
	}
	if err := (Pace{}).Validate(); err == nil {
		t.Fatal("zero pace valid")
	}
	if err := BodyPace.Validate(); err != nil {
		t.Fatal(err)
	}
}

// testPace is BodyPace scaled down, so slow clients are cut in about a
// second.
var testPace = Pace{MinRate: 1024, Grace: time.Second, Window: time.Second}

// bodyServer is an HTTP server with the recommended timeouts whose PUT
// handler reads the body at pace and reports what it got.
type bodyServer struct {
	addr   string
	result chan error
	got    chan int64
}

func startBodyServer(t *testing.T, pace Pace) *bodyServer {
	t.Helper()
	ln := nettest.Listen(t)
	bs := &bodyServer{addr: ln.Addr().String(), result: make(chan error, 16), got: make(chan int64, 16)}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := BodyReader(w, r, pace, time.Time{})
		defer body.Close()
		_, err := io.Copy(io.Discard, body)
		bs.got <- body.Bytes()
		bs.result <- err
		if errors.Is(err, ErrTooSlow) || errors.Is(err, ErrDeadline) {
			http.Error(w, err.Error(), http.StatusRequestTimeout)
			return
		}
		// Handled after the body: the connection must still work (no
		// deadline left behind cancels the request).
		select {
		case <-r.Context().Done():
			http.Error(w, "context ended", http.StatusInternalServerError)
			return
		case <-time.After(1200 * time.Millisecond): // past the pace's window
		}
		_, _ = fmt.Fprintf(w, "got %d", body.Bytes())
	})}
	DefaultHTTPTimeouts().Apply(srv)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return bs
}

// TestSlowlorisBodyIsCut: a body sent at 1 byte per 2 s is cut about
// Grace after the body starts; the handler sees ErrTooSlow and the client
// sees the connection end.
func TestSlowlorisBodyIsCut(t *testing.T) {
	slowloris(t, testPace, 2*time.Second)
}

// TestSlowlorisBodyIsCutAtDefaultPace runs the same attack against
// BodyPace itself (10 s of grace).
func TestSlowlorisBodyIsCutAtDefaultPace(t *testing.T) {
	if testing.Short() {
		t.Skip("takes BodyPace.Grace (10 s)")
	}
	t.Parallel()
	slowloris(t, BodyPace, 2*time.Second)
}

func slowloris(t *testing.T, pace Pace, slack time.Duration) {
	bs := startBodyServer(t, pace)
	c, start := rawRequest(t, bs.addr, "PUT /k HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
	// The attacker: one byte every 2 s until the server hangs up.
	cut := make(chan time.Duration, 1)
	go func() {
		_ = c.SetReadDeadline(time.Now().Add(pace.Grace + 30*time.Second))
		_, _ = io.Copy(io.Discard, c) // returns when the server closes
		cut <- time.Since(start)
	}()
	ticker := time.NewTicker(2 * time.Second)
	defer ticker.Stop()
	var sent int
loop:
	for {
		if _, err := c.Write([]byte("x")); err != nil {
			break
		}
		sent++
		select {
		case <-ticker.C:
		case <-cut:
			cut <- time.Since(start)
			break loop
		}
	}
	took := <-cut
	err := <-bs.result
	t.Logf("pace %+v: slowloris sent %d bytes, cut after %v: %v", pace, sent, took, err)
	var se *SlowError
	if !errors.As(err, &se) || se.Deadline {
		t.Fatalf("handler's read ended with %v, want a *SlowError for the rate", err)
	}
	if took < pace.Grace || took > pace.Grace+slack {
		t.Fatalf("cut after %v, want within [%v, %v]", took, pace.Grace, pace.Grace+slack)
	}
}

// TestHonestSlowBodyPasses: a body sent in pieces at twice the minimum
// rate, with pauses, is read whole; the request then completes after the
// handler's extra work (no deadline was left on the connection).
func TestHonestSlowBodyPasses(t *testing.T) {
	bs := startBodyServer(t, testPace)
	const size = 6 << 10 // 3 s at 2 KiB/s
	pr, pw := io.Pipe()
	go func() {
		defer pw.Close()
		for sent := 0; sent < size; sent += 256 {
			if _, err := pw.Write(make([]byte, 256)); err != nil {
				return
			}
			time.Sleep(125 * time.Millisecond)
		}
	}()
	req, err := http.NewRequest(http.MethodPut, "http://"+bs.addr+"/k", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := <-bs.result; err != nil {
		t.Fatalf("handler: %v", err)
	}
	if resp.StatusCode != http.StatusOK || string(b) != fmt.Sprintf("got %d", size) {
		t.Fatalf("answer %d %q", resp.StatusCode, b)
	}
	// The connection is reused for a second request.
	resp2, err := http.DefaultClient.Do(mustPut(t, bs.addr, "abc"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if err := <-bs.result; err != nil || string(b) != "got 3" {
		t.Fatalf("second request: %v, %q", err, b)
	}
}

func mustPut(t *testing.T, addr, body string) *http.Request {
	req, err := http.NewRequest(http.MethodPut, "http://"+addr+"/k", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestBodyAbsoluteDeadline: a body arriving fast enough but past the
// absolute deadline is cut with ErrDeadline.
func TestBodyAbsoluteDeadline(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		for {
			if _, err := b.Write(make([]byte, 4096)); err != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	start := time.Now()
	r := NewReader(a, a.SetReadDeadline, testPace, start.Add(300*time.Millisecond))
	n, err := io.Copy(io.Discard, r)
	took := time.Since(start)
	if !errors.Is(err, ErrDeadline) || errors.Is(err, ErrTooSlow) {
		t.Fatalf("read %d bytes in %v, ended with %v; want ErrDeadline", n, took, err)
	}
	if took < 300*time.Millisecond || took > 2*time.Second {
		t.Fatalf("cut after %v, want about 300ms", took)
	}
	if _, err2 := r.Read(make([]byte, 1)); err2 != err {
		t.Fatalf("read after the cut: %v", err2)
	}
	// The passed deadline stays: the rest is not read as something else.
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read on the connection after the cut: %v, want the deadline error", err)
	}
}

// TestReaderClearsDeadline: EOF and Close clear the deadline the Reader
// set, and an error that is not the Reader's is passed through.
func TestReaderClearsDeadline(t *testing.T) {
	var sets []time.Time
	set := func(d time.Time) error { sets = append(sets, d); return nil }
	r := NewReader(strings.NewReader("hello"), set, testPace, time.Time{})
	if b, err := io.ReadAll(r); err != nil || string(b) != "hello" {
		t.Fatalf("%q, %v", b, err)
	}
	if len(sets) < 2 || !sets[len(sets)-1].IsZero() {
		t.Fatalf("deadlines set %v: want the pace's, then cleared", sets)
	}
	_ = r.Close()
	sets = nil
	r = NewReader(errReader{}, set, testPace, time.Time{})
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, errBoom) {
		t.Fatalf("err %v", err)
	}
	if !sets[len(sets)-1].IsZero() {
		t.Fatal("deadline not cleared after an error")
	}
	// A deadline error from the connection that the Reader did not set
	// (someone else's, earlier) is not reported as slowness.
	r = NewReader(timeoutReader{}, func(time.Time) error { return nil }, testPace, time.Time{})
	if _, err := r.Read(make([]byte, 1)); errors.Is(err, ErrTooSlow) || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("foreign timeout became %v", err)
	}
	// Closing before the end clears too, and stops reads.
	sets = nil
	r = NewReader(strings.NewReader("hello"), set, testPace, time.Time{})
	_, _ = r.Read(make([]byte, 1))
	_ = r.Close()
	if !sets[len(sets)-1].IsZero() {
		t.Fatal("Close did not clear the deadline")
	}
	if _, err := r.Read(make([]byte, 1)); err == nil {
		t.Fatal("read after Close")
	}
}

var errBoom = errors.New("boom")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBoom }

type timeoutReader struct{}

func (timeoutReader) Read([]byte) (int, error) { return 0, os.ErrDeadlineExceeded }

// TestReplyToANonReaderIsCut: a 16 MiB reply to a client that reads
// nothing fills the socket buffers, then the paced writer cuts it within
// the pace's window instead of holding the reply for the whole
// WriteTimeout.
func TestReplyToANonReaderIsCut(t *testing.T) {
	ln := nettest.Listen(t)
	result := make(chan error, 1)
	written := make(chan int64, 1)
	var stalledAt atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(16<<20))
		w.WriteHeader(http.StatusOK)
		wr := ReplyWriter(w, testPace, time.Time{})
		defer wr.Close()
		buf := make([]byte, 16<<20)
		_, err := wr.Write(buf)
		stalledAt.Store(time.Now().UnixNano())
		written <- wr.Bytes()
		result <- err
	})}
	DefaultHTTPTimeouts().Apply(srv)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	c, start := rawRequest(t, ln.Addr().String(), "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	// Read only the status line, then nothing.
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.Contains(line, "200") {
		t.Fatalf("status line %q, %v", line, err)
	}
	err := <-result
	n := <-written
	took := time.Since(start)
	t.Logf("reply cut after %v with %d of %d bytes in the socket buffers: %v", took, n, 16<<20, err)
	if !errors.Is(err, ErrTooSlow) {
		t.Fatalf("write ended with %v, want ErrTooSlow", err)
	}
	if n >= 16<<20 {
		t.Fatal("the whole reply was written to a client that reads nothing")
	}
	// Bytes buffered in the kernel bought at most Window of credit each
	// time; the cut comes within Grace + Window of the stall, well under
	// the WriteTimeout backstop.
	if bound := testPace.Grace + testPace.Window + 2*time.Second; took > bound {
		t.Fatalf("cut after %v, want under %v", took, bound)
	}
}

// TestWriterChunksAndClears: a paced write of a large buffer to a reader
// that keeps up goes through in chunks under re-armed deadlines, and
// Close clears the deadline.
func TestWriterChunksAndClears(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() { _, _ = io.Copy(io.Discard, b) }()
	var sets int
	set := func(d time.Time) error { sets++; return a.SetWriteDeadline(d) }
	w := NewWriter(a, set, testPace, time.Time{})
	n, err := w.Write(make([]byte, 10*writeChunk+5))
	if err != nil || n != 10*writeChunk+5 || w.Bytes() != int64(n) {
		t.Fatalf("wrote %d, %v", n, err)
	}
	_ = w.Close()
	if sets < 2 {
		t.Fatalf("%d deadlines set: want the pace's and the clearing", sets)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("write after Close")
	}
	if _, err := a.Write([]byte("x")); err != nil {
		t.Fatalf("connection unusable after the pace ended: %v", err)
	}
}

func TestDefaultHTTPTimeouts(t *testing.T) {
	h := DefaultHTTPTimeouts()
	var s http.Server
	h.Apply(&s)
	if s.ReadHeaderTimeout != 10*time.Second || s.ReadTimeout != 0 || s.IdleTimeout != 2*time.Minute || s.MaxHeaderBytes != 64<<10 {
		t.Fatalf("server timeouts %v %v %v %d", s.ReadHeaderTimeout, s.ReadTimeout, s.IdleTimeout, s.MaxHeaderBytes)
	}
	// The backstop covers the largest reply at ReplyPace.
	if s.WriteTimeout < ReplyPace.TimeFor(12<<20) || s.WriteTimeout > 5*time.Minute {
		t.Fatalf("write timeout %v", s.WriteTimeout)
	}
}

func BenchmarkReader(b *testing.B) {
	data := make([]byte, 64<<10)
	buf := make([]byte, 4096)
	set := func(time.Time) error { return nil }
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r := NewReader(&repeatReader{data: data}, set, BodyPace, time.Time{})
		for {
			if _, err := r.Read(buf); err != nil {
				break
			}
		}
	}
}

type repeatReader struct {
	data []byte
	off  int
}

func (r *repeatReader) Read(b []byte) (int, error) {
	if r.off == len(r.data) {
		return 0, io.EOF
	}
	n := copy(b, r.data[r.off:])
	r.off += n
	return n, nil
}
