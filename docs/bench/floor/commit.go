//go:build ignore

// commit times one badger v4 write transaction (one 100-byte value, SyncWrites
// off, options as quorumkv's store and mini.go open it) committed by one
// goroutine at a time: the store's share of a one-client SET's latency
// (docs/bench/floor.md). Run from the repository root with GOMAXPROCS=1:
//
//	GOMAXPROCS=1 go run docs/bench/floor/commit.go -n 20000
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"sort"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"
	boptions "github.com/dgraph-io/badger/v4/options"
)

func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	n := flag.Int("n", 20000, "commits timed")
	flag.Parse()
	dir, err := os.MkdirTemp("", "floor-commit-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := badger.Open(badger.DefaultOptions(dir).WithSyncWrites(false).WithLogger(nil).
		WithMetricsEnabled(false).WithDetectConflicts(false).WithNumVersionsToKeep(1).
		WithIndexCacheSize(0).WithCompression(boptions.None).WithNumGoroutines(2))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	val := make([]byte, 100)
	d := make([]time.Duration, *n)
	c0 := cpu()
	for i := range d {
		k := []byte(fmt.Sprintf("key:%012d", i%100000))
		s := time.Now()
		txn := db.NewTransaction(true)
		if err := txn.Set(k, val); err != nil {
			log.Fatal(err)
		}
		if err := txn.Commit(); err != nil {
			log.Fatal(err)
		}
		d[i] = time.Since(s)
	}
	cc := cpu() - c0
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	q := func(p float64) float64 { return float64(d[int(p*float64(*n-1))].Nanoseconds()) / 1e3 }
	fmt.Printf("badger commit, one at a time: n=%d p50_us=%.1f p99_us=%.1f cpu_us_per_commit=%.1f\n",
		*n, q(0.5), q(0.99), float64(cc.Nanoseconds())/1e3/float64(*n))
}
