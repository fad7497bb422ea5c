package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/bench/oracle"
)

// BenchmarkChecker measures the cost of feeding one write (invoke, tag,
// acknowledgement with its answer) and one read, for several History
// sizes, over 10,000 keys whose writes each carry the context of the
// previous one (so old writes are superseded and dropped, as in a run).
func BenchmarkChecker(b *testing.B) {
	const keys = 10_000
	names := make([]string, keys)
	for i := range names {
		names[i] = "k" + strconv.Itoa(i)
	}
	for _, history := range []int{1, 8, 64} {
		c, err := NewChecker(CheckerConfig{History: history})
		if err != nil {
			b.Fatal(err)
		}
		ctx := make([]oracle.Context, keys)
		last := make([][]byte, keys)
		var now time.Duration
		write := func(i int) {
			now++
			op := c.Invoke(names[i], ctx[i], i%3, now)
			last[i] = c.AppendTag(last[i][:0], op)
			ctx[i] = c.Acked(op, now, [][]byte{last[i]})
		}
		// Fill every key's history so reads scan full windows.
		for range history {
			for i := range names {
				write(i)
			}
		}
		b.Run(fmt.Sprintf("write/history=%d", history), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				write(i % keys)
				i++
			}
		})
		b.Run(fmt.Sprintf("read/history=%d", history), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k := i % keys
				i++
				c.Read(ReadEvent{Key: names[k], Coord: 2, Invoke: now + 1, Values: [][]byte{last[k]}})
			}
		})
	}
}

// BenchmarkHistogramRecord measures recording one latency.
func BenchmarkHistogramRecord(b *testing.B) {
	for _, d := range []time.Duration{50 * time.Microsecond, 5 * time.Millisecond, 2 * time.Second} {
		b.Run(d.String(), func(b *testing.B) {
			l := newLatency()
			b.ReportAllocs()
			for b.Loop() {
				l.record(d)
			}
		})
	}
}

// BenchmarkKeyChooser measures drawing one key index.
func BenchmarkKeyChooser(b *testing.B) {
	for _, n := range []int{1_000, 1_000_000} {
		u, _ := NewUniform(n)
		z, _ := NewZipfian(n, DefaultTheta, true)
		l, _ := NewLatest(n, DefaultTheta)
		for _, c := range []struct {
			name string
			c    KeyChooser
		}{{"uniform", u}, {"zipfian", z}, {"latest", l}} {
			b.Run(fmt.Sprintf("%s/keys=%d", c.name, n), func(b *testing.B) {
				r := rand.New(rand.NewPCG(1, 2))
				b.ReportAllocs()
				for b.Loop() {
					_ = c.c.Next(r)
				}
			})
		}
	}
}

// nopClient answers instantly: every write is acknowledged (its answer
// shows the value written), every read finds nothing. Running against it
// measures the harness's own cost per operation.
type nopClient struct{}

func (c *nopClient) Coordinators() int { return 3 }

func (c *nopClient) Get(context.Context, int, string, Quorum, bool) (ReadResult, error) {
	return ReadResult{Context: "ctx"}, nil
}

func (c *nopClient) Put(_ context.Context, _ int, _ string, value []byte, _ string, _ Quorum) (WriteResult, error) {
	return WriteResult{Context: "ctx", Values: [][]byte{value}}, nil
}

// BenchmarkRun measures the harness overhead per operation (key choice,
// timing, histogram, checker, coordinator choice) for a closed-loop run of
// 20,000 YCSB A operations over 10,000 keys against a client that does
// nothing; ns/benchop is the figure.
func BenchmarkRun(b *testing.B) {
	for _, workers := range []int{1, 4} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Keys, cfg.Concurrency, cfg.Duration, cfg.Ops = 10_000, workers, 0, 20_000
			cfg.Load, cfg.CheckLost, cfg.Settle = false, false, 0
			b.ReportAllocs()
			var ops int64
			start := time.Now()
			for b.Loop() {
				res, err := Run(b.Context(), &nopClient{}, cfg)
				if err != nil {
					b.Fatal(err)
				}
				ops += res.Ops
			}
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(ops), "ns/benchop")
		})
	}
}
