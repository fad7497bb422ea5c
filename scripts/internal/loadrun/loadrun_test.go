package loadrun

import (
	"context"
	"errors"
	"flag"
	"sync/atomic"
	"testing"
	"time"
)

// TestRun: every client runs until the end, successes are timed and
// counted apart from errors, and each interval of the measured time is
// reported once, the last at its end.
func TestRun(t *testing.T) {
	var calls atomic.Int64
	var reports []Interval
	res := Run(Config{Clients: 3, Warmup: 20 * time.Millisecond, Duration: 200 * time.Millisecond, Every: 50 * time.Millisecond,
		Report: func(iv Interval) { reports = append(reports, iv) }},
		func(i int) func(context.Context) error {
			n := 0
			return func(context.Context) error {
				calls.Add(1)
				n++
				time.Sleep(2 * time.Millisecond)
				if n%5 == 0 {
					return errors.New("every fifth call fails")
				}
				return nil
			}
		})
	if res.OK == 0 || res.Errors == 0 || res.FirstError != "every fifth call fails" {
		t.Fatalf("result %+v", res)
	}
	if res.OK+res.Errors > calls.Load() {
		t.Fatalf("counted %d requests of %d calls", res.OK+res.Errors, calls.Load())
	}
	if res.P50 < 2000 || res.P99 < res.P50 || res.OpsPerSec <= 0 {
		t.Fatalf("latencies %d/%d µs, %f ops/s: want p50 >= the 2 ms each call sleeps", res.P50, res.P99, res.OpsPerSec)
	}
	// Four intervals, fewer if a sleep overran into a later one (a
	// loaded machine): never more, and the last ends the measured time.
	if len(reports) < 1 || len(reports) > 4 {
		t.Fatalf("%d interval reports, want 1 to 4: %+v", len(reports), reports)
	}
	last := reports[len(reports)-1]
	var ok int64
	for _, iv := range reports {
		ok += iv.OK
	}
	// A request may end between the last report and the end of the
	// measured time: at most one per client.
	if ok > res.OK || ok < res.OK-3 || last.Elapsed < 200*time.Millisecond {
		t.Fatalf("intervals counted %d of %d, last at %v", ok, res.OK, last.Elapsed)
	}
}

// TestFlagsValid: the shared flags' defaults pass, and each out-of-range
// value fails.
func TestFlagsValid(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{nil, true},
		{[]string{"-clients", "0"}, false},
		{[]string{"-keys", "0"}, false},
		{[]string{"-value-size", "-1"}, false},
		{[]string{"-value-size", "0", "-clients", "1", "-keys", "1"}, true},
	} {
		fs := flag.NewFlagSet("driver", flag.ContinueOnError)
		f := AddFlags(fs, "address", 4, "clients", time.Second, 10, "keys")
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if got := f.Valid(); got != tc.want || *f.Addr != "127.0.0.1:8080" {
			t.Errorf("%q: Valid %v, want %v (addr %q)", tc.args, got, tc.want, *f.Addr)
		}
	}
}
