//go:build ignore

// tracewait reads a Go execution trace of an agent running with
// GOMAXPROCS=1 (curl .../debug/pprof/trace?seconds=8 with QUORUMKV_PPROF)
// and says what the runnable goroutines waited behind: the distribution of
// runnable->running waits, the running time and the long slices of each
// goroutine (by its entry function), what held the P during waits of 2 ms
// or more, the longest waits one by one, and the CPU samples inside running
// slices (a trace taken while a CPU profile runs carries them: far fewer
// samples than the slice length means the kernel had descheduled the
// thread). Not part of the module (golang.org/x/exp/trace is not a
// dependency); run it from a scratch module:
//
//	mkdir /tmp/tw && cp docs/bench/p99/tracewait.go /tmp/tw/main.go && cd /tmp/tw &&
//	  sed -i 1,2d main.go && go mod init tw && go get golang.org/x/exp/trace && go build -o tw . && ./tw n1.trace
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/exp/trace"
)

type sample struct {
	g  trace.GoID
	t  trace.Time
	st string
}

type slice struct {
	g          trace.GoID
	start, end trace.Time
	why        string
}

func top(st trace.Stack, n int) string {
	var out []string
	for f := range st.Frames() {
		if len(out) == n {
			break
		}
		out = append(out, short(f.Func))
	}
	return strings.Join(out, " < ")
}

func entry(st trace.Stack) string {
	last := ""
	for f := range st.Frames() {
		last = f.Func
	}
	return last
}

func short(s string) string {
	s = strings.TrimPrefix(s, "github.com/")
	if i := strings.LastIndex(s, "/"); i >= 0 {
		s = s[i+1:]
	}
	return s
}

func main() {
	f, err := os.Open(os.Args[1])
	if err != nil {
		panic(err)
	}
	r, err := trace.NewReader(f)
	if err != nil {
		panic(err)
	}
	label := map[trace.GoID]string{}
	runnableAt := map[trace.GoID]trace.Time{}
	runStart := map[trace.GoID]trace.Time{}
	var waits []struct {
		g        trace.GoID
		from, to trace.Time
	}
	var slices []slice
	var samples []sample
	var sysSlices []slice
	sysStart := map[trace.GoID]trace.Time{}
	sysWhy := map[trace.GoID]string{}
	var gcRanges [][2]trace.Time
	rangeStart := map[string]trace.Time{}
	var first, last trace.Time
	for {
		ev, err := r.ReadEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		if first == 0 {
			first = ev.Time()
		}
		last = ev.Time()
		if g := ev.Goroutine(); g != trace.NoGoroutine && label[g] == "" {
			if e := entry(ev.Stack()); e != "" {
				label[g] = e
			}
		}
		switch ev.Kind() {
		case trace.EventStackSample:
			samples = append(samples, sample{ev.Goroutine(), ev.Time(), top(ev.Stack(), 4)})
		case trace.EventRangeBegin:
			rg := ev.Range()
			rangeStart[rg.Name] = ev.Time()
		case trace.EventRangeEnd:
			rg := ev.Range()
			if rg.Name == "GC concurrent mark phase" {
				gcRanges = append(gcRanges, [2]trace.Time{rangeStart[rg.Name], ev.Time()})
			}
			if strings.HasPrefix(rg.Name, "stop-the-world") {
				gcRanges = append(gcRanges, [2]trace.Time{rangeStart[rg.Name], ev.Time()})
			}
		case trace.EventStateTransition:
			st := ev.StateTransition()
			if st.Resource.Kind != trace.ResourceGoroutine {
				continue
			}
			g := st.Resource.Goroutine()
			from, to := st.Goroutine()
			if from == trace.GoNotExist || label[g] == "" {
				if e := entry(st.Stack); e != "" {
					label[g] = e
				}
			}
			if to == trace.GoRunnable {
				runnableAt[g] = ev.Time()
			}
			if to == trace.GoRunning {
				if t, ok := runnableAt[g]; ok && from == trace.GoRunnable {
					waits = append(waits, struct {
						g        trace.GoID
						from, to trace.Time
					}{g, t, ev.Time()})
				}
				delete(runnableAt, g)
				runStart[g] = ev.Time()
			}
			if to == trace.GoSyscall {
				sysStart[g] = ev.Time()
				sysWhy[g] = top(st.Stack, 3)
			}
			if from == trace.GoSyscall {
				if t, ok := sysStart[g]; ok {
					sysSlices = append(sysSlices, slice{g, t, ev.Time(), sysWhy[g]})
				}
				delete(sysStart, g)
			}
			if from == trace.GoRunning {
				if t, ok := runStart[g]; ok {
					why := ""
					if time.Duration(ev.Time()-t) >= 4*time.Millisecond {
						why = fmt.Sprintf("-> %v: %s", to, top(st.Stack, 5))
					}
					slices = append(slices, slice{g, t, ev.Time(), why})
				}
				delete(runStart, g)
			}
		}
	}
	dur := time.Duration(last - first)
	fmt.Printf("trace %v, %d run slices, %d runnable waits\n", dur, len(slices), len(waits))
	lab := func(g trace.GoID) string {
		if l := label[g]; l != "" {
			return short(l)
		}
		return "?"
	}
	// 1. runnable wait distribution
	ws := make([]time.Duration, len(waits))
	for i, w := range waits {
		ws[i] = time.Duration(w.to - w.from)
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i] < ws[j] })
	q := func(p float64) time.Duration { return ws[min(int(p*float64(len(ws))), len(ws)-1)] }
	fmt.Printf("runnable->running wait: p50 %v p90 %v p99 %v p99.9 %v max %v\n", q(.5), q(.9), q(.99), q(.999), ws[len(ws)-1])
	for _, th := range []time.Duration{time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond} {
		n := 0
		for _, w := range ws {
			if w >= th {
				n++
			}
		}
		fmt.Printf("  waits >= %v: %d (%.2f%%)\n", th, n, 100*float64(n)/float64(len(ws)))
	}
	// 2. CPU time and long slices by label
	type agg struct {
		total           time.Duration
		n, long1, long5 int
		max             time.Duration
	}
	byl := map[string]*agg{}
	for _, s := range slices {
		l := lab(s.g)
		a := byl[l]
		if a == nil {
			a = &agg{}
			byl[l] = a
		}
		d := time.Duration(s.end - s.start)
		a.total += d
		a.n++
		if d >= time.Millisecond {
			a.long1++
		}
		if d >= 5*time.Millisecond {
			a.long5++
		}
		a.max = max(a.max, d)
	}
	keys := make([]string, 0, len(byl))
	for k := range byl {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return byl[keys[i]].total > byl[keys[j]].total })
	fmt.Printf("\nrunning time by goroutine entry (share of trace, slices, slices>=1ms, >=5ms, longest):\n")
	for _, k := range keys[:min(25, len(keys))] {
		a := byl[k]
		fmt.Printf("  %5.1f%% %7d %5d %4d %8v  %s\n", 100*float64(a.total)/float64(dur), a.n, a.long1, a.long5, a.max.Round(time.Microsecond), k)
	}
	// 3. during waits >= 2ms of request goroutines: who ran
	sort.Slice(slices, func(i, j int) bool { return slices[i].start < slices[j].start })
	sort.Slice(sysSlices, func(i, j int) bool { return sysSlices[i].end < sysSlices[j].end })
	// held adds to who, by goroutine, the running time (and, as "SYSCALL
	// ...", the syscall time) that overlaps [from, to]; it returns the
	// running time.
	held := func(who map[string]time.Duration, from, to trace.Time) (running time.Duration) {
		i := sort.Search(len(slices), func(i int) bool { return slices[i].end > from })
		for ; i < len(slices) && slices[i].start < to; i++ {
			s := slices[i]
			if o := time.Duration(min(s.end, to) - max(s.start, from)); o > 0 {
				who[lab(s.g)] += o
				running += o
			}
		}
		j := sort.Search(len(sysSlices), func(i int) bool { return sysSlices[i].end > from })
		for ; j < len(sysSlices) && sysSlices[j].start < to; j++ {
			s := sysSlices[j]
			if o := time.Duration(min(s.end, to) - max(s.start, from)); o > 0 {
				who["SYSCALL "+lab(s.g)+" "+s.why] += o
			}
		}
		return running
	}
	fmt.Printf("\nsyscalls >= 2ms:\n")
	for _, s := range sysSlices {
		if d := time.Duration(s.end - s.start); d >= 2*time.Millisecond {
			fmt.Printf("  @%7.3fs %8v %s %s\n", time.Duration(s.start-first).Seconds(), d.Round(time.Microsecond), lab(s.g), s.why)
		}
	}
	for _, th := range []time.Duration{2 * time.Millisecond} {
		who := map[string]time.Duration{}
		var total time.Duration
		nw := 0
		inGC := 0
		for _, w := range waits {
			if time.Duration(w.to-w.from) < th {
				continue
			}
			nw++
			for _, gr := range gcRanges {
				if gr[0] < w.to && gr[1] > w.from {
					inGC++
					break
				}
			}
			covered := held(who, w.from, w.to)
			who["(P not running a goroutine)"] += time.Duration(w.to-w.from) - covered
			total += time.Duration(w.to - w.from)
		}
		fmt.Printf("\nduring %d waits >= %v (%d overlap a GC mark phase or STW), what ran (share of waited time):\n", nw, th, inGC)
		ks := make([]string, 0)
		for k := range who {
			ks = append(ks, k)
		}
		sort.Slice(ks, func(i, j int) bool { return who[ks[i]] > who[ks[j]] })
		for _, k := range ks[:min(20, len(ks))] {
			fmt.Printf("  %5.1f%%  %s\n", 100*float64(who[k])/float64(total), k)
		}
	}
	fmt.Printf("\nslices >= 4ms:\n")
	for _, s := range slices {
		if d := time.Duration(s.end - s.start); d >= 4*time.Millisecond {
			gc := ""
			for _, gr := range gcRanges {
				if gr[0] < s.end && gr[1] > s.start {
					gc = " [GC]"
				}
			}
			fmt.Printf("  @%7.3fs %8v%s %s %s\n", time.Duration(s.start-first).Seconds(), d.Round(time.Microsecond), gc, lab(s.g), s.why)
			cnt := map[string]int{}
			for _, sm := range samples {
				if sm.t >= s.start && sm.t <= s.end {
					cnt[fmt.Sprint(sm.g == s.g, " ", sm.st)]++
				}
			}
			for k, v := range cnt {
				fmt.Printf("        %3d %s\n", v, k)
			}
		}
	}
	{
		var all, long time.Duration
		var nAll, nLong int
		sort.Slice(samples, func(i, j int) bool { return samples[i].t < samples[j].t })
		for _, s := range slices {
			d := time.Duration(s.end - s.start)
			lo := sort.Search(len(samples), func(i int) bool { return samples[i].t >= s.start })
			hi := sort.Search(len(samples), func(i int) bool { return samples[i].t > s.end })
			all += d
			nAll += hi - lo
			if d >= 4*time.Millisecond {
				long += d
				nLong += hi - lo
			}
		}
		fmt.Printf("\nCPU samples: %d in all running slices (%v: %.0f/s of running), %d in slices >= 4ms (%v: %.0f/s)\n",
			nAll, all, float64(nAll)/all.Seconds(), nLong, long, float64(nLong)/long.Seconds())
	}
	{
		// the longest waits: when, and what held the P
		type lw struct {
			g        trace.GoID
			from, to trace.Time
		}
		var big []lw
		for _, w := range waits {
			if time.Duration(w.to-w.from) >= 20*time.Millisecond {
				big = append(big, lw{w.g, w.from, w.to})
			}
		}
		sort.Slice(big, func(i, j int) bool { return big[i].from < big[j].from })
		fmt.Printf("\nwaits >= 20ms: %d\n", len(big))
		lastShown := trace.Time(0)
		for _, w := range big {
			if w.from < lastShown+trace.Time(50*time.Millisecond) {
				continue
			}
			lastShown = w.from
			who := map[string]time.Duration{}
			cov := held(who, w.from, w.to)
			lo := sort.Search(len(samples), func(i int) bool { return samples[i].t >= w.from })
			hi := sort.Search(len(samples), func(i int) bool { return samples[i].t > w.to })
			fmt.Printf("  @%7.3fs wait %v of %s; running covered %v; cpu samples %d\n", time.Duration(w.from-first).Seconds(), time.Duration(w.to-w.from).Round(time.Microsecond), lab(w.g), cov.Round(time.Microsecond), hi-lo)
			ks := []string{}
			for k := range who {
				ks = append(ks, k)
			}
			sort.Slice(ks, func(a, b int) bool { return who[ks[a]] > who[ks[b]] })
			for _, k := range ks[:min(6, len(ks))] {
				fmt.Printf("        %8v %s\n", who[k].Round(time.Microsecond), k)
			}
		}
	}
	var gct time.Duration
	for _, gr := range gcRanges {
		gct += time.Duration(gr[1] - gr[0])
	}
	fmt.Printf("\nGC mark+STW ranges: %d, %v total (%.1f%% of trace)\n", len(gcRanges), gct, 100*float64(gct)/float64(dur))
}
