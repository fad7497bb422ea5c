//go:build ignore

// timeline: per-request timelines from a Go execution trace of one process
// (GOMAXPROCS=1, one client): docs/bench/onecli2.md. Not part of the
// module; build it as docs/bench/p99/tracewait.go says (a scratch module
// with golang.org/x/exp/trace).
//
//	timeline n1.trace                      # a quorumkv coordinator
//	timeline -replica n2.trace             # a quorumkv replica
//	timeline -conn main.respConn -writer newCoalescer -reader dialPeer \
//	  -wait "coord).set" -deliver dialPeer -fill bufio n1.trace   # the floor's process 1
//	timeline -replica -reader replicaConn -writer newCoalescer n2.trace  # a floor replica
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/exp/trace"
)

var (
	replicaMode = flag.Bool("replica", false, "the trace is a replica's (default: the coordinator's)")
	connP       = flag.String("conn", "resp.(*conn).serve", "the client connection's goroutine")
	writerP     = flag.String("writer", "writeLoop", "the peer connections' writer goroutines")
	readerP     = flag.String("reader", "readLoop", "the peer connections' reader goroutines")
	waitP       = flag.String("wait", "replicate", "the function whose block is the wait for replies")
	deliverP    = flag.String("deliver", "deliver", "the function that hands a reply to the waiter")
	fillP       = flag.String("fill", "resp.(*reader).fill", "the client connection's read")
)

func has(st trace.Stack, s string) bool {
	for f := range st.Frames() {
		if strings.Contains(f.Func, s) {
			return true
		}
	}
	return false
}

// tev is one goroutine state transition.
type tev struct {
	g, by  trace.GoID // the goroutine, and the one running when it happened
	o, n   trace.GoState
	reason string
	stk    trace.Stack
	entry  string // the goroutine's entry function
	t      trace.Time
}

// cycle is one request's stamps; set keeps the first of each.
type cycle map[string]trace.Time

func (c cycle) set(k string, t trace.Time) {
	if c == nil {
		return
	}
	if _, ok := c[k]; !ok {
		c[k] = t
	}
}

// busy sums the P's running slices (GOMAXPROCS=1: one goroutine at a time).
type busy struct {
	running    trace.GoID
	start, sum trace.Time
}

func (b *busy) observe(e *tev) {
	if e.n == trace.GoRunning {
		b.running, b.start = e.g, e.t
	} else if e.o == trace.GoRunning && e.g == b.running {
		b.sum += e.t - b.start
		b.running = -1
	}
}

func (b *busy) take() float64 {
	d := float64(b.sum) / 1e3
	b.sum = 0
	return d
}

// walk calls fn for every goroutine state transition of the trace at path.
func walk(path string, fn func(e *tev)) {
	f, err := os.Open(path)
	if err != nil {
		panic(err)
	}
	r, err := trace.NewReader(f)
	if err != nil {
		panic(err)
	}
	entry := map[trace.GoID]string{}
	for {
		ev, err := r.ReadEvent()
		if err == io.EOF {
			return
		}
		if err != nil {
			panic(err)
		}
		if ev.Kind() != trace.EventStateTransition {
			continue
		}
		st := ev.StateTransition()
		if st.Resource.Kind != trace.ResourceGoroutine {
			continue
		}
		e := tev{g: st.Resource.Goroutine(), by: ev.Goroutine(), reason: st.Reason, stk: st.Stack, t: ev.Time()}
		e.o, e.n = st.Goroutine()
		if e.stk == trace.NoStack {
			e.stk = ev.Stack()
		}
		if _, ok := entry[e.g]; !ok && e.by == e.g && e.stk != trace.NoStack {
			for fr := range e.stk.Frames() {
				entry[e.g] = fr.Func
			}
		}
		e.entry = entry[e.g]
		fn(&e)
	}
}

// report prints the quartiles of each interval [name, from, to] over the cycles.
func report(cycles []cycle, busyL []float64, iv [][3]string) {
	fmt.Printf("cycles %d\n", len(cycles))
	sort.Float64s(busyL)
	if len(busyL) > 0 {
		fmt.Printf("%-60s n=%5d p50 %6.1f us\n", "P busy per request (goroutines running)", len(busyL), busyL[len(busyL)/2])
	}
	for _, x := range iv {
		var d []float64
		for _, c := range cycles {
			a, ok1 := c[x[1]]
			b, ok2 := c[x[2]]
			if ok1 && ok2 && b >= a {
				d = append(d, float64(b-a)/1e3)
			}
		}
		sort.Float64s(d)
		if len(d) == 0 {
			fmt.Printf("%-60s none\n", x[0])
			continue
		}
		q := func(p float64) float64 { return d[int(p*float64(len(d)-1))] }
		fmt.Printf("%-60s n=%5d p25 %6.1f p50 %6.1f p75 %6.1f us\n", x[0], len(d), q(.25), q(.5), q(.75))
	}
}

func main() {
	flag.Parse()
	if *replicaMode {
		replica(flag.Arg(0))
	} else {
		coordinator(flag.Arg(0))
	}
}

// coordinator: a cycle per client request, from the netpoller waking the
// client connection's goroutine to the next such wake-up.
func coordinator(path string) {
	var conn trace.GoID = -1
	var cur cycle
	var cycles []cycle
	var b busy
	var busyL []float64
	writers := map[trace.GoID]bool{}
	readers := map[trace.GoID]bool{}
	nsend, nwrite := 0, 0
	walk(path, func(e *tev) {
		b.observe(e)
		if strings.Contains(e.entry, *connP) && conn == -1 {
			conn = e.g
		}
		if strings.Contains(e.entry, *writerP) {
			writers[e.g] = true
		}
		if strings.Contains(e.entry, *readerP) {
			readers[e.g] = true
		}
		t := e.t
		if e.g == conn {
			switch {
			case e.o == trace.GoWaiting && e.n == trace.GoRunnable && e.by == trace.NoGoroutine:
				if cur != nil && cur["L"] != 0 {
					cur["next"] = t
					busyL = append(busyL, b.take())
				}
				b.take()
				cur = cycle{"A": t}
				cycles = append(cycles, cur)
				nsend, nwrite = 0, 0
			case e.n == trace.GoRunning && e.o == trace.GoRunnable:
				cur.set("A.run", t)
			case e.n == trace.GoRunnable && e.reason == "runtime.Gosched" && has(e.stk, "replicate"):
				cur.set("D.gosched", t)
			case e.n == trace.GoWaiting && has(e.stk, "Commit"):
				cur.set("F.commitwait", t)
			case e.n == trace.GoWaiting && has(e.stk, *waitP):
				cur.set("G.select", t)
			case e.o == trace.GoWaiting && e.n == trace.GoRunnable && (has(e.stk, *deliverP) || readers[e.by]):
				cur.set("I.delivered", t)
			case e.n == trace.GoSyscall && has(e.stk, "syscall.write"):
				cur.set("J.respwrite", t)
			case e.o == trace.GoSyscall && cur != nil && cur["J.respwrite"] != 0:
				cur.set("K.respwritten", t)
			case e.n == trace.GoWaiting && has(e.stk, *fillP):
				cur.set("L", t)
			}
			return
		}
		if cur == nil {
			return
		}
		waiting := cur["H.replywake"] == 0
		switch {
		case writers[e.g] && e.o == trace.GoWaiting && e.n == trace.GoRunnable && e.by == conn:
			nsend++
			cur.set(fmt.Sprintf("B.send%d", nsend), t)
		case writers[e.g] && e.n == trace.GoSyscall && cur["B.send1"] != 0 && waiting:
			nwrite++
			cur.set(fmt.Sprintf("E.write%d", nwrite), t)
		case writers[e.g] && e.o == trace.GoSyscall && cur["E.write1"] != 0 && waiting:
			cur.set(fmt.Sprintf("E.written%d", nwrite), t)
		case readers[e.g] && e.o == trace.GoWaiting && e.n == trace.GoRunnable && e.by == trace.NoGoroutine && cur["E.write1"] != 0:
			if !waiting {
				cur.set("H2.replywake", t)
			}
			cur.set("H.replywake", t)
		}
	})
	report(cycles, busyL, [][3]string{
		{"request wake -> running", "A", "A.run"},
		{"running -> 1st send queued (read,parse,plan,mint)", "A.run", "B.send1"},
		{"1st send queued -> 2nd queued", "B.send1", "B.send2"},
		{"2nd send queued -> Gosched", "B.send2", "D.gosched"},
		{"Gosched -> 1st send write() start", "D.gosched", "E.write1"},
		{"1st send write() syscall", "E.write1", "E.written1"},
		{"1st written -> 2nd written", "E.written1", "E.written2"},
		{"2nd written -> commit wait (conn resumes, commit)", "E.written2", "F.commitwait"},
		{"2nd written -> select", "E.written2", "G.select"},
		{"1st write start -> reply wake (remote RTT)", "E.write1", "H.replywake"},
		{"select -> reply wake (idle wait)", "G.select", "H.replywake"},
		{"1st reply wake -> 2nd reply wake", "H.replywake", "H2.replywake"},
		{"reply wake -> conn woken by deliver", "H.replywake", "I.delivered"},
		{"delivered -> RESP write() start", "I.delivered", "J.respwrite"},
		{"RESP write() syscall", "J.respwrite", "K.respwritten"},
		{"RESP written -> parked", "K.respwritten", "L"},
		{"parked -> next request (outside this process)", "L", "next"},
		{"request wake -> 1st send write() start", "A", "E.write1"},
		{"request wake -> 2nd send written", "A", "E.written2"},
		{"residence: request wake -> RESP written", "A", "K.respwritten"},
		{"cycle: request wake -> next request wake", "A", "next"},
	})
}

// replica: a cycle per frame, from the netpoller waking a peer
// connection's reader to the next wake-up after the reply was written.
func replica(path string) {
	var cycles []cycle
	var cur cycle
	var worker trace.GoID = -1
	var b busy
	var busyL []float64
	walk(path, func(e *tev) {
		b.observe(e)
		t := e.t
		applier := e.g == worker || strings.Contains(e.entry, *readerP)
		switch {
		case strings.Contains(e.entry, *readerP) && e.o == trace.GoWaiting && e.n == trace.GoRunnable && e.by == trace.NoGoroutine:
			if cur != nil && cur["W1"] == 0 {
				return // a wake-up with no reply written yet: the same request
			}
			if cur != nil {
				cur["next"] = t
				busyL = append(busyL, b.take())
			}
			b.take()
			cur = cycle{"R0": t}
			cycles = append(cycles, cur)
		case strings.Contains(e.entry, "workerPool") && e.o == trace.GoWaiting && e.n == trace.GoRunnable && has(e.stk, *readerP):
			worker = e.g
			cur.set("R1.handoff", t)
		case e.g == worker && e.o == trace.GoRunnable && e.n == trace.GoRunning:
			cur.set("R2.workerRuns", t)
		case e.g == worker && e.n == trace.GoRunnable && e.reason == "runtime.Gosched":
			cur.set("R3.storeGosched", t)
		case applier && e.n == trace.GoWaiting && has(e.stk, "Commit"):
			cur.set("R4.commitWait", t)
		case applier && e.o == trace.GoWaiting && e.n == trace.GoRunnable && has(e.stk, "writeRequests"):
			cur.set("R5.committed", t)
		case strings.Contains(e.entry, *writerP) && e.o == trace.GoWaiting && e.n == trace.GoRunnable:
			cur.set("R6.enqueued", t)
		case strings.Contains(e.entry, *writerP) && e.n == trace.GoSyscall:
			cur.set("W0", t)
		case strings.Contains(e.entry, *writerP) && e.o == trace.GoSyscall && cur != nil && cur["W0"] != 0:
			cur.set("W1", t)
		}
	})
	report(cycles, busyL, [][3]string{
		{"frame wake -> worker handoff (read, decode)", "R0", "R1.handoff"},
		{"handoff -> worker runs", "R1.handoff", "R2.workerRuns"},
		{"worker runs -> store Gosched (merge, check)", "R2.workerRuns", "R3.storeGosched"},
		{"worker runs -> commit wait", "R2.workerRuns", "R4.commitWait"},
		{"frame wake -> commit wait (all before the commit)", "R0", "R4.commitWait"},
		{"commit wait -> committed (badger doWrites)", "R4.commitWait", "R5.committed"},
		{"committed -> reply write() start", "R5.committed", "W0"},
		{"committed -> reply enqueued", "R5.committed", "R6.enqueued"},
		{"enqueued -> write() start", "R6.enqueued", "W0"},
		{"reply write() syscall", "W0", "W1"},
		{"replica residence: frame wake -> reply written", "R0", "W1"},
		{"frame wake -> next frame wake", "R0", "next"},
	})
}
