// Package loadrun runs the closed-loop load of the benchmark drivers in
// scripts/ (httpload, kvload): a number of clients, each sending one
// request and waiting for its answer before the next, an unmeasured
// warm-up, then a measured time whose throughput and latency quantiles
// (HDR histograms, 1 µs to 60 s at 3 significant digits) it returns, and
// optionally a report per interval of it.
package loadrun

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Config is a run's shape.
type Config struct {
	Clients          int
	Warmup, Duration time.Duration
	// Every, if positive, calls Report after each interval of this length
	// of the measured time (the last one may be shorter).
	Every  time.Duration
	Report func(Interval)
}

// Result is what the measured time saw. Latencies are in microseconds.
type Result struct {
	OpsPerSec      float64
	P50, P99, P999 int64
	OK, Errors     int64
	FirstError     string // "" if none
	Elapsed        time.Duration
}

// Interval is one interval of the measured time: its end (since the
// measured time began), throughput, latency quantiles (µs) and counts.
type Interval struct {
	Elapsed   time.Duration
	OpsPerSec float64
	P50, P99  int64
	OK        int64
	Errors    int64
}

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, 60_000_000, 3) }

// Run runs cfg.Clients clients, client i sending requests with
// newClient(i) (called before any starts) until the run ends; a request
// that returns an error counts as an error, not a latency.
func Run(cfg Config, newClient func(i int) func(ctx context.Context) error) Result {
	var (
		measuring   atomic.Bool
		ok, errs    atomic.Int64
		firstErr    atomic.Value
		mu          = make([]sync.Mutex, cfg.Clients) // guards ihists[i]
		hists       = make([]*hdrhistogram.Histogram, cfg.Clients)
		ihists      = make([]*hdrhistogram.Histogram, cfg.Clients)
		ctx, cancel = context.WithCancel(context.Background())
		wg          sync.WaitGroup
	)
	defer cancel()
	dos := make([]func(context.Context) error, cfg.Clients)
	for i := range dos {
		dos[i] = newClient(i)
		hists[i], ihists[i] = newHist(), newHist()
	}
	for i, do := range dos {
		wg.Go(func() {
			for ctx.Err() == nil {
				start := time.Now()
				err := do(ctx)
				el := time.Since(start).Microseconds()
				if !measuring.Load() || ctx.Err() != nil {
					continue
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
				_ = hists[i].RecordValue(el)
				if cfg.Every > 0 {
					mu[i].Lock()
					_ = ihists[i].RecordValue(el)
					mu[i].Unlock()
				}
			}
		})
	}
	time.Sleep(cfg.Warmup)
	measuring.Store(true)
	start := time.Now()
	if cfg.Every > 0 {
		intervals(start, cfg, mu, ihists, &ok, &errs)
	} else {
		time.Sleep(cfg.Duration)
	}
	measuring.Store(false)
	elapsed := time.Since(start)
	cancel()
	wg.Wait()
	all := newHist()
	for _, h := range hists {
		all.Merge(h)
	}
	res := Result{OpsPerSec: float64(ok.Load()) / elapsed.Seconds(), P50: all.ValueAtQuantile(50),
		P99: all.ValueAtQuantile(99), P999: all.ValueAtQuantile(99.9), OK: ok.Load(), Errors: errs.Load(), Elapsed: elapsed}
	if e := firstErr.Load(); e != nil {
		res.FirstError = e.(string)
	}
	return res
}

// intervals calls cfg.Report after each interval until cfg.Duration has
// passed since start, with every client's interval histogram merged, then
// reset.
func intervals(start time.Time, cfg Config, mu []sync.Mutex, hs []*hdrhistogram.Histogram, ok, errs *atomic.Int64) {
	var lastOK, lastErr int64
	last, end := start, start.Add(cfg.Duration)
	for n := 1; ; n++ {
		next := start.Add(time.Duration(n) * cfg.Every)
		if next.After(end) {
			next = end
		}
		time.Sleep(time.Until(next))
		all := newHist()
		for i := range hs {
			mu[i].Lock()
			all.Merge(hs[i])
			hs[i].Reset()
			mu[i].Unlock()
		}
		o, e, now := ok.Load(), errs.Load(), time.Now()
		cfg.Report(Interval{Elapsed: now.Sub(start), OpsPerSec: float64(o-lastOK) / now.Sub(last).Seconds(),
			P50: all.ValueAtQuantile(50), P99: all.ValueAtQuantile(99), OK: o - lastOK, Errors: e - lastErr})
		lastOK, lastErr, last = o, e, now
		if !now.Before(end) {
			return
		}
	}
}

// Flags are the flags both drivers take: the node to load, the run's
// shape and its data.
type Flags struct {
	Addr             *string
	Clients          *int
	Warmup, Duration *time.Duration
	ValueSize, Keys  *int
	fs               *flag.FlagSet
}

// AddFlags declares -addr, -clients, -warmup, -duration, -value-size and
// -keys on fs with the driver's defaults; addrUsage says what -addr names
// and keysUsage what -keys names.
func AddFlags(fs *flag.FlagSet, addrUsage string, clients int, clientsUsage string, warmup time.Duration, keys int, keysUsage string) Flags {
	return Flags{
		Addr:      fs.String("addr", "127.0.0.1:8080", addrUsage),
		Clients:   fs.Int("clients", clients, clientsUsage),
		Duration:  fs.Duration("duration", 10*time.Second, "measured time"),
		Warmup:    fs.Duration("warmup", warmup, "unmeasured time before it"),
		ValueSize: fs.Int("value-size", 100, "value size in bytes"),
		Keys:      fs.Int("keys", keys, keysUsage),
		fs:        fs,
	}
}

// Parse parses the command line into the flag set of AddFlags and exits
// with status 2, saying "driver: bad flags", when the shared flags are out
// of range (Valid) or valid, the driver's own check of its flags, returns
// false.
func (f Flags) Parse(driver string, valid func() bool) {
	if err := f.fs.Parse(os.Args[1:]); err == nil && f.Valid() && valid() {
		return
	}
	fmt.Fprintln(os.Stderr, driver+": bad flags")
	os.Exit(2)
}

// Valid reports whether the shared flags are in range: at least one
// client and one key, and no negative value size.
func (f Flags) Valid() bool {
	return *f.Clients >= 1 && *f.Keys >= 1 && *f.ValueSize >= 0
}

// Config is the run's shape the parsed flags give.
func (f Flags) Config() Config {
	return Config{Clients: *f.Clients, Warmup: *f.Warmup, Duration: *f.Duration}
}

// Print writes res as the driver's one result line, the fields before it
// first, and its first error, if any, to stderr.
func Print(driver string, res Result, fields ...any) {
	for _, f := range fields {
		fmt.Printf("%v ", f)
	}
	fmt.Printf("%.0f %d %d %d %d %d\n", res.OpsPerSec, res.P50, res.P99, res.P999, res.OK, res.Errors)
	if res.FirstError != "" {
		fmt.Fprintln(os.Stderr, driver+": first error:", res.FirstError)
	}
}
