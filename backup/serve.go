package backup

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/quorumkv/quorumkv/vclock"
)

// The node's side of backup and restore: what its endpoints do that is
// not about the node (writing a stream page by page, reading a merge
// request whole and checked, merging each record into its replicas).

// WriteStream writes a backup stream to w: the header with meta, then
// recs, then, while more, the pages next returns, each flushed as its own
// chunks before next is called (the caller releases whatever it held for
// the page meanwhile), then the end chunk. next may be nil when !more.
// An error after the header leaves the stream without its end chunk, which
// a reader reports as truncated.
func WriteStream(w io.Writer, meta Meta, recs []Record, more bool, next func() ([]Record, bool, error)) error {
	bw, err := NewWriter(w, meta)
	for err == nil {
		for _, r := range recs {
			if err = bw.Add(r); err != nil {
				return err
			}
		}
		if err = bw.Flush(); err != nil || !more {
			break
		}
		recs, more, err = next()
	}
	if err != nil {
		return err
	}
	return bw.Close()
}

// ReadBatch reads the whole backup stream r (a merge request) into records
// it owns, and checks that every key is at most maxKey bytes and every set
// decodes, so that a bad request is refused before anything is merged.
func ReadBatch(r io.Reader, maxKey int) ([]Record, error) {
	var recs []Record
	err := ForEach(r, func(rec Record) error {
		if len(rec.Key) > maxKey {
			return fmt.Errorf("key %.64q of %d bytes: this cluster's limit is %d (--max-key-size)", rec.Key, len(rec.Key), maxKey)
		}
		if _, err := vclock.DecodeSet(rec.Set); err != nil {
			return fmt.Errorf("key %.64q: set does not decode: %w", rec.Key, err)
		}
		recs = append(recs, Record{Key: bytes.Clone(rec.Key), Set: bytes.Clone(rec.Set)})
		return nil
	})
	return recs, err
}

// Replicate merges each record into every one of its n replicas: targets
// lists a key's replicas (a record with fewer than n fails) and merge
// merges a set into one; up to workers records are handled at once, each
// record's replicas side by side. It returns how many replica merges
// landed and the first failure; a failed record's other merges still land
// (merging is idempotent, so the caller sends the batch again).
func Replicate[T any](ctx context.Context, recs []Record, n, workers int, targets func(key []byte) []T, merge func(ctx context.Context, t T, set []byte) error) (landed int, err error) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		jobs = make(chan Record)
	)
	fail := func(e error) {
		if err == nil {
			err = e
		}
	}
	for range min(workers, len(recs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rec := range jobs {
				ts := targets(rec.Key)
				// A record's replicas are merged at once, not one
				// after another: a merge is a round trip to another
				// node, and three in a row made the restore wait on
				// latency (about 7,400 keys/s into 5 agents).
				errs := make([]error, len(ts))
				var tw sync.WaitGroup
				for i, t := range ts {
					tw.Add(1)
					go func() {
						defer tw.Done()
						errs[i] = merge(ctx, t, rec.Set)
					}()
				}
				tw.Wait()
				ok := 0
				var rerr error
				for _, e := range errs {
					if e != nil {
						rerr = e
						continue
					}
					ok++
				}
				if rerr == nil && ok < n {
					rerr = fmt.Errorf("only %d live members for its %d replicas", ok, n)
				}
				mu.Lock()
				landed += ok
				if rerr != nil {
					fail(fmt.Errorf("key %.64q: %w", rec.Key, rerr))
				}
				mu.Unlock()
			}
		}()
	}
	for _, rec := range recs {
		jobs <- rec
	}
	close(jobs)
	wg.Wait()
	return landed, err
}
