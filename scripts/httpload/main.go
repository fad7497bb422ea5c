package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/quorumkv/quorumkv/client"
)

func main() {
	addrs := flag.String("addr", "127.0.0.1:8080", "node HTTP addresses, comma-separated (used in round robin)")
	op := flag.String("op", "put", "put or get")
	clients := flag.Int("clients", 32, "concurrent clients")
	duration := flag.Duration("duration", 10*time.Second, "measured time")
	warmup := flag.Duration("warmup", 2*time.Second, "unmeasured time before it")
	size := flag.Int("value-size", 100, "value size in bytes")
	keys := flag.Int("keys", 10000, "key space; must be a multiple of -clients")
	n := flag.Int("n", 3, "N")
	r := flag.Int("r", 2, "R (get)")
	w := flag.Int("w", 2, "W (put)")
	flag.Parse()
	if *clients < 1 || *keys < *clients || *keys%*clients != 0 || *size < 0 || (*op != "put" && *op != "get") {
		fmt.Fprintln(os.Stderr, "httpload: bad flags")
		os.Exit(2)
	}
	c, err := client.New(strings.Split(*addrs, ","), client.WithMaxIdleConnsPerHost(*clients))
	if err != nil {
		fmt.Fprintln(os.Stderr, "httpload:", err)
		os.Exit(2)
	}
	value := make([]byte, *size)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	per := *keys / *clients

	var measuring atomic.Bool
	var okCount, errCount atomic.Int64
	hists := make([]*hdrhistogram.Histogram, *clients)
	var firstErr atomic.Value
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range *clients {
		// 1µs to 60s at 3 significant digits.
		h := hdrhistogram.New(1, 60_000_000, 3)
		hists[i] = h
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			ctxs := make([]string, per)
			for j := 0; ctx.Err() == nil; j++ {
				var err error
				start := time.Now()
				if *op == "put" {
					k := j % per
					var wr *client.WriteResult
					wr, err = c.Put(ctx, fmt.Sprintf("bench-%d", i*per+k), value,
						client.N(*n), client.W(*w), client.Context(ctxs[k]))
					if err == nil {
						ctxs[k] = wr.Context
					}
				} else {
					_, err = c.Get(ctx, fmt.Sprintf("bench-%d", rng.IntN(*keys)), client.N(*n), client.R(*r))
					if errors.Is(err, client.ErrNotFound) {
						err = nil // an unwritten key is still a served read
					}
				}
				el := time.Since(start)
				if !measuring.Load() || ctx.Err() != nil {
					continue
				}
				if err != nil {
					errCount.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				okCount.Add(1)
				_ = h.RecordValue(el.Microseconds())
			}
		})
	}
	time.Sleep(*warmup)
	measuring.Store(true)
	start := time.Now()
	time.Sleep(*duration)
	measuring.Store(false)
	elapsed := time.Since(start)
	cancel()
	wg.Wait()
	all := hdrhistogram.New(1, 60_000_000, 3)
	for _, h := range hists {
		all.Merge(h)
	}
	fmt.Printf("%s %d %.0f %d %d %d %d %d\n", *op, *clients, float64(okCount.Load())/elapsed.Seconds(),
		all.ValueAtQuantile(50), all.ValueAtQuantile(99), all.ValueAtQuantile(99.9), okCount.Load(), errCount.Load())
	if e := firstErr.Load(); e != nil {
		fmt.Fprintln(os.Stderr, "httpload: first error:", e)
	}
}
