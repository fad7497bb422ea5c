//go:build linux

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The issue 14 attacks as real processes, each against one agent of a
// 3-agent cluster while an ordinary client works beside it: the agent
// stays up, its resident memory (VmRSS from /proc) stays under its
// --memory-limit, and the ordinary client's p99 stays under a stated
// bound. The figures are logged (docs/BENCHMARKS.md, issue 14).

// hostileLimit is the agents' --memory-limit in these tests.
const hostileLimit = 512 << 20

// rssOf is pid's resident set in bytes (VmRSS).
func rssOf(pid int) (int64, error) { return procStatus(pid, "VmRSS") }

// procStatus reads a size field (kB) of /proc/pid/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field+":" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// rssParts splits pid's resident set by what is mapped (from
// /proc/pid/smaps), in bytes: anonymous memory (the heap, stacks),
// badger's memtable files (mem), tables (sst), value logs (vlog), and the
// rest (other: the binary, libraries).
func rssParts(pid int) (map[string]int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return nil, err
	}
	parts := map[string]int64{}
	kind := "anon"
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			kind = "anon"
			if len(f) >= 6 && strings.HasPrefix(f[5], "/") {
				kind = "other"
				for _, ext := range []string{".mem", ".sst", ".vlog"} {
					if strings.HasSuffix(f[5], ext) {
						kind = ext[1:]
					}
				}
			}
		case len(f) == 3 && f[0] == "Rss:":
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			parts[kind] += kb << 10
		}
	}
	return parts, nil
}

// rssPeaks are the largest samples of an agent's resident set (watchRSS).
type rssPeaks struct {
	// RSS is VmRSS; Anon its anonymous part (RssAnon: the heap, not
	// the store's mapped files).
	RSS, Anon int64
	// Bounded is RSS less the value log's resident pages: what
	// --memory-limit bounds. Badger reads and writes its value logs
	// through mmap, and the pages touched stay resident until the
	// kernel reclaims them (clean, after a sync), so their share grows
	// with the bytes written and read, which no badger option bounds
	// (docs/ARCHITECTURE.md, "Resource limits").
	Bounded int64
	// Vlog is the value log's resident pages at their largest.
	Vlog int64
}

// watchRSS samples pid's memory every 20 ms until stop is called, which
// returns the largest samples and logs how the largest RSS split.
func watchRSS(t *testing.T, pid int) (stop func() rssPeaks) {
	var mu sync.Mutex
	var p rssPeaks
	var split map[string]int64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			r, err := rssOf(pid)
			anon, _ := procStatus(pid, "RssAnon")
			parts, perr := rssParts(pid)
			mu.Lock()
			if err == nil && r > p.RSS {
				p.RSS, split = r, parts
			}
			p.Anon = max(p.Anon, anon)
			if err == nil && perr == nil {
				p.Bounded = max(p.Bounded, r-parts["vlog"])
				p.Vlog = max(p.Vlog, parts["vlog"])
			}
			mu.Unlock()
			if !sleepUnless(done, 20*time.Millisecond) {
				return
			}
		}
	}()
	return func() rssPeaks {
		close(done)
		<-finished
		mu.Lock()
		defer mu.Unlock()
		t.Logf("RSS at its peak of %d MiB: anon %d, mem %d, sst %d, vlog %d, other %d MiB; largest RSS less the value log %d MiB, largest value log %d MiB",
			p.RSS>>20, split["anon"]>>20, split["mem"]>>20, split["sst"]>>20, split["vlog"]>>20, split["other"]>>20, p.Bounded>>20, p.Vlog>>20)
		return p
	}
}

// ordinary is a well-behaved client: small PUTs and GETs in a loop from
// 127.0.0.2 (a source no attack uses), one at a time, each timed.
type ordinary struct {
	mu    sync.Mutex
	took  []time.Duration
	fails []string
	stop  chan struct{}
	done  chan struct{}
}

func startOrdinary(t *testing.T, base string) *ordinary {
	o := &ordinary{stop: make(chan struct{}), done: make(chan struct{})}
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}).DialContext}}
	go func() {
		defer close(o.done)
		for i := 0; ; i++ {
			select {
			case <-o.stop:
				return
			default:
			}
			url := fmt.Sprintf("%s/kv/ordinary-%d", base, i/2%50) // a GET reads the PUT before it
			method, body := "PUT", strings.NewReader("small value")
			url += "?overwrite=true"
			if i%2 == 1 {
				method, body = "GET", strings.NewReader("")
				url = strings.TrimSuffix(url, "?overwrite=true")
			}
			req, _ := http.NewRequestWithContext(context.Background(), method, url, body)
			start := time.Now()
			res, err := hc.Do(req)
			took := time.Since(start)
			o.mu.Lock()
			o.took = append(o.took, took)
			switch {
			case err != nil:
				o.fails = append(o.fails, err.Error())
			case res.StatusCode/100 != 2:
				b, _ := io.ReadAll(io.LimitReader(res.Body, 200))
				o.fails = append(o.fails, fmt.Sprintf("%s %d %s", method, res.StatusCode, strings.Join(strings.Fields(string(b)), " ")))
			}
			o.mu.Unlock()
			if err == nil {
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return o
}

// countBusy counts the failures that are 503 answers saying busy: the
// node's budget, or a replica's ("peer busy"), had no room.
func countBusy(fails []string) int {
	n := 0
	for _, f := range fails {
		if strings.Contains(f, " 503 ") && strings.Contains(f, "busy") {
			n++
		}
	}
	return n
}

// count is how many requests the client did so far.
func (o *ordinary) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.took)
}

// finish stops the client and returns its p99, request count and
// failures.
func (o *ordinary) finish() (p99 time.Duration, n int, fails []string) {
	close(o.stop)
	<-o.done
	o.mu.Lock()
	defer o.mu.Unlock()
	d := slices.Clone(o.took)
	slices.Sort(d)
	if len(d) == 0 {
		return 0, 0, o.fails
	}
	return d[len(d)*99/100], len(d), o.fails
}

// dialSrc connects to addr from the loopback address src.
func dialSrc(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}).Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Memory amplification: one key given 11 siblings of 1 MiB, then, for
// about 8 s: 4 RESP clients each send an MGET naming it 400 times and read
// nothing, 40 RESP clients each pipeline 10 GETs of it and read nothing,
// 60 HTTP GETs of it are never read, and 50 more are read in parallel. Before, 400 names killed a node capped at 4 GB, 100 peaked at
// 2.8 GB, and 60 unread GETs pinned 3.6 GB.
func TestHostileMemoryAmplification(t *testing.T) {
	as := cluster(t, 3, withRESP, withArgs("--memory-limit", strconv.Itoa(hostileLimit)))
	a := as[0]
	base := "http://" + a.http
	value := strings.Repeat("x", 1<<20-64)
	for i := range 11 {
		// w=1: the siblings are what matters here, not their replication
		// (which a loaded machine can slow past the write's timeout).
		if status, _, body := do(t, "PUT", base+"/kv/huge?w=1", []byte(value[:len(value)-i]), nil); status != 204 {
			t.Fatalf("PUT sibling %d: %d %s", i, status, body)
		}
	}
	before, _ := rssOf(a.pid())
	t.Logf("agent RSS before the attack: %d MiB", before>>20)
	stopRSS := watchRSS(t, a.pid())
	o := startOrdinary(t, base)

	var mget strings.Builder
	fmt.Fprintf(&mget, "*401\r\n$4\r\nMGET\r\n")
	for range 400 {
		mget.WriteString("$4\r\nhuge\r\n")
	}
	for i := range 4 { // MGETs whose answers nobody reads
		c := dialSrc(t, fmt.Sprintf("127.0.0.%d", 10+i), a.resp)
		if _, err := io.WriteString(c, mget.String()); err != nil {
			t.Fatal(err)
		}
	}
	// RESP GETs whose answers nobody reads: 40 connections each
	// pipelining 10 GETs of the key, which RESP has not read before (its
	// sizes are its own): each is charged its set and its copy until its
	// reply is flushed, so most wait in the budget's line and get -BUSY.
	var respGets strings.Builder
	for range 10 {
		respGets.WriteString("*2\r\n$3\r\nGET\r\n$4\r\nhuge\r\n")
	}
	for i := range 40 {
		c := dialSrc(t, fmt.Sprintf("127.0.0.%d", 14+i%4), a.resp)
		if _, err := io.WriteString(c, respGets.String()); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 60 { // GETs whose answers nobody reads
		c := dialSrc(t, fmt.Sprintf("127.0.0.%d", 20+i%4), a.http)
		fmt.Fprintf(c, "GET /kv/huge HTTP/1.1\r\nHost: %s\r\nAccept: multipart/mixed\r\n\r\n", a.http)
	}
	var busy, ok, other atomic.Int64
	var otherMu sync.Mutex
	var others []string
	var wg sync.WaitGroup
	for i := range 50 { // GETs read in parallel
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
				DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(30+i%4))}}).DialContext}}
			res, err := hc.Get(base + "/kv/huge")
			if err != nil {
				other.Add(1)
				otherMu.Lock()
				others = append(others, err.Error())
				otherMu.Unlock()
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			switch res.StatusCode {
			case 300, 200:
				ok.Add(1)
			case 503:
				busy.Add(1)
			default:
				other.Add(1)
				otherMu.Lock()
				others = append(others, res.Status)
				otherMu.Unlock()
			}
		}()
	}
	wg.Wait()
	// The unread answers stay pending while the ordinary client does a
	// few hundred more requests (several seconds).
	waitFor(t, 60*time.Second, "the ordinary client to do 400 requests under the attack", func() bool { return o.count() >= 400 }, a)
	p99, n, fails := o.finish()
	peaks := stopRSS()
	peak, anon := peaks.RSS, peaks.Anon
	if !a.running() {
		t.Fatal("the agent died under the attack")
	}
	if status, _, _ := do(t, "GET", base+"/healthz", nil, nil); status != 200 {
		t.Fatalf("/healthz after the attack: %d", status)
	}
	t.Logf("memory amplification: agent RSS peak %d MiB, anonymous %d MiB (limit %d MiB); parallel GETs %d answered, %d busy, %d other; ordinary client %d requests, p99 %v, %d failed %v",
		peak>>20, anon>>20, hostileLimit>>20, ok.Load(), busy.Load(), other.Load(), n, p99.Round(time.Millisecond), len(fails), fails[:min(len(fails), 5)])
	// The whole resident set stays under the limit: GOMEMLIMIT is the
	// limit less 30% kept for the mapped files and the binary
	// (membudget.Plan). The value log's resident pages are not bounded by
	// any badger option (rssPeaks.Bounded): 66 to 122 MiB here (the huge
	// key's writes, 66 MiB, and read repairs' rewrites). With 20% kept,
	// the whole RSS peaked at 462 to 524 MiB; before the split, with
	// GOMEMLIMIT at the limit, at 589 to 653 MiB, 487 to 505 MiB
	// anonymous. Before GETs reserved a key's known size
	// (multikey.Sizes), 60 GETs started at once read their sets before
	// the budget saw them: peaks of 0.6 to 1.5 GiB; before issue 14, the
	// GETs alone pinned 3.6 GB.
	if peak > hostileLimit {
		t.Errorf("RSS peaked at %d MiB, over the %d MiB limit (less the value log's %d MiB: %d MiB)", peak>>20, hostileLimit>>20, peaks.Vlog>>20, peaks.Bounded>>20)
	}
	if p99 > 2*time.Second || len(fails)*50 > n {
		t.Errorf("ordinary client: p99 %v (bound 2s), %d of %d failed (bound 2%%)", p99, len(fails), n)
	}
	// Its small requests have their own lane in the budget, with a
	// reserve the attack's large ones leave free (membudget
	// Config.SmallRequest): none is refused busy. Before the lane, 0 to 9
	// of ~400 were, queued behind the attack's; the failures left are
	// quorums lost to a peer declared dead under the machine's load.
	if busy := countBusy(fails); busy > 0 {
		t.Errorf("ordinary client: %d of %d small requests refused busy (bound 0)", busy, n)
	}
	// With the budget held by the unread answers, the parallel GETs are
	// refused with 503 busy after their wait: answered or busy, nothing
	// else.
	if other.Load() != 0 {
		t.Errorf("%d parallel GETs neither answered nor refused busy: %v", other.Load(), others)
	}
}

// readLine reads one line from c within d.
func readLine(c net.Conn, d time.Duration) (string, error) {
	_ = c.SetReadDeadline(time.Now().Add(d))
	return bufio.NewReader(c).ReadString('\n')
}

// flood opens silent TCP connections to each of addrs from 8 loopback
// sources (127.0.0.40 to .47), each goroutine keeping its last 40 open,
// until stop is called (once or more); opened and stop return how many
// connected.
func flood(addrs ...string) (opened func() int64, stop func() int64) {
	var n atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, addr := range addrs {
		for src := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(40+src))}, Timeout: time.Second}
				var held []net.Conn
				defer func() {
					for _, c := range held {
						c.Close()
					}
				}()
				for {
					if !sleepUnless(done, 5*time.Millisecond) {
						return
					}
					c, err := d.Dial("tcp", addr)
					if err != nil {
						continue // the agent is down, or refused it
					}
					n.Add(1)
					held = append(held, c)
					if len(held) > 40 {
						held[0].Close()
						held = held[1:]
					}
				}
			}()
		}
	}
	var once sync.Once
	return n.Load, func() int64 {
		once.Do(func() { close(done) })
		wg.Wait()
		return n.Load()
	}
}

// RPC port: silent connections from 8 sources flood every agent's RPC
// port (each source keeps 40 open and opens one more every 5 ms) while
// one agent is restarted. Before, 64 silent connections filled every
// handshake slot: the restarted peer could not connect, 10 of 10 w=3
// writes answered 503 and the node logged 8,678 lines in 14 s. Now the
// oldest silent connection is evicted for a newcomer, so the restarted
// agent is seen alive and a w=3 write succeeds within a bound while the
// flood goes on, and refused handshakes log a bounded number of lines.
func TestHostileHandshakeFlood(t *testing.T) {
	as := cluster(t, 3)
	as[2].kill()
	logStart := int64(len(readFileOr(as[0].logPath)))
	openedSoFar, stopFlood := flood(as[0].rpc, as[1].rpc, as[2].rpc)
	defer stopFlood()
	// The flood fills the slots first: 8 sources x 40 connections on
	// each of the two agents up, five times the 64 slots.
	waitFor(t, 30*time.Second, "the flood to open 640 connections", func() bool { return openedSoFar() >= 640 }, as[0], as[1])

	restarted := time.Now()
	as[2].start() // waits until every running agent sees it alive
	alive := time.Since(restarted)
	var wrote time.Duration
	waitFor(t, 30*time.Second, "a w=3 write through the flood", func() bool {
		status, _, _ := do(t, "PUT", as[0].url("/kv/through-the-flood?w=3"), []byte("v"), nil)
		wrote = time.Since(restarted)
		return status == 204
	}, as...)
	opened := stopFlood()
	for _, a := range as {
		if !a.running() {
			t.Fatalf("%s died during the flood", a.id)
		}
	}
	var handshakeLines int
	for _, l := range strings.Split(readFileOr(as[0].logPath)[logStart:], "\n") {
		if strings.Contains(l, "handshake") || strings.Contains(l, "evict") {
			handshakeLines++
		}
	}
	t.Logf("handshake flood: %d silent connections opened; restarted agent alive after %v, w=3 write after %v; %d log lines about handshakes on the first agent",
		opened, alive.Round(time.Millisecond), wrote.Round(time.Millisecond), handshakeLines)
	if wrote > 20*time.Second {
		t.Errorf("the w=3 write took %v after the restart, bound 20 s", wrote)
	}
	if handshakeLines > 200 {
		t.Errorf("%d log lines about handshakes, bound 200 (rate-limited per kind and source)", handshakeLines)
	}
}

func readFileOr(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// Slow clients on RESP: 400 connections from 8 sources each send half of
// a 1 MiB SET and then nothing. Before, 800 such connections took 1.2 GB
// (nothing bounded the bytes buffered for unfinished commands). Now those
// bytes are charged to the partial-command budget (an eighth of the
// node's): connections that cannot grow their buffer get -BUSY and are
// closed, the rest are cut at the command pace.
func TestHostileHalfSentSets(t *testing.T) {
	as := cluster(t, 3, withRESP, withArgs("--memory-limit", strconv.Itoa(hostileLimit)))
	a := as[0]
	before, _ := rssOf(a.pid())
	stopRSS := watchRSS(t, a.pid())
	o := startOrdinary(t, "http://"+a.http)
	half := fmt.Sprintf("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%s", 1<<20, strings.Repeat("v", 512<<10))
	var sent, busy atomic.Int64
	var wg sync.WaitGroup
	for i := range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(50+i%8))}, Timeout: 5 * time.Second}).Dial("tcp", a.resp)
			if err != nil {
				return // refused over a cap: bounded too
			}
			defer c.Close()
			if _, err := io.WriteString(c, half); err != nil {
				return // closed while sending: -BUSY or the cap
			}
			sent.Add(1)
			if line, err := readLine(c, 30*time.Second); err == nil && strings.HasPrefix(line, "-BUSY") {
				busy.Add(1)
			}
		}()
	}
	waitFor(t, 60*time.Second, "the ordinary client to do 400 requests under the attack", func() bool { return o.count() >= 400 }, a)
	p99, n, fails := o.finish()
	peaks := stopRSS()
	peak, anon := peaks.RSS, peaks.Anon
	wg.Wait()
	if !a.running() {
		t.Fatal("the agent died under the attack")
	}
	t.Logf("half-sent SETs: %d of 400 sent their half, %d answered -BUSY; agent RSS %d MiB before, peak %d MiB, anonymous %d MiB (limit %d MiB); ordinary client %d requests, p99 %v, %d failed %v",
		sent.Load(), busy.Load(), before>>20, peak>>20, anon>>20, hostileLimit>>20, n, p99.Round(time.Millisecond), len(fails), fails[:min(len(fails), 5)])
	// 400 x 512 KiB is 200 MiB buffered if nothing bounded it; the
	// partial-command budget is 16 MiB.
	if anon-before >= 200<<20 {
		t.Errorf("anonymous memory grew by %d MiB, as much as buffering every half-sent command", (anon-before)>>20)
	}
	if peak >= hostileLimit {
		t.Errorf("RSS peaked at %d MiB, over the %d MiB limit", peak>>20, hostileLimit>>20)
	}
	if p99 > 2*time.Second || len(fails)*50 > n {
		t.Errorf("ordinary client: p99 %v (bound 2s), %d of %d failed (bound 2%%)", p99, len(fails), n)
	}
}
