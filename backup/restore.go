package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Sink merges records into a cluster. Implementations must be safe for
// concurrent use and must not retain recs.
type Sink interface {
	// Merge merges each record's set into every replica of its key in the
	// cluster (the replica merge, vclock.Sync), placed by the cluster's own
	// ring. It returns nil only when every record reached every replica;
	// merging again is harmless, so a failed call may be repeated.
	Merge(ctx context.Context, recs []Record) error
}

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// Workers is how many batches are merged at once; 0 means 4.
	Workers int
	// BatchRecords and BatchBytes bound one Merge call; 0 means 500
	// records and 4 MiB.
	BatchRecords, BatchBytes int
	// Attempts is how many times a batch is tried; 0 means 3.
	Attempts int
	// Retry is the wait before the second attempt, doubled after each;
	// 0 means 500ms.
	Retry time.Duration
	// Progress, if set, is called after each batch lands (from one
	// goroutine at a time; it must not block for long).
	Progress func(Progress)
	// Now times the progress; nil means time.Now.
	Now func() time.Time
}

// RestoreResult is what Restore did.
type RestoreResult struct {
	// Records merged into the cluster (a key the file holds twice counts twice).
	Records uint64
	// Bytes read from the file.
	Bytes   uint64
	Elapsed time.Duration
}

// Restore merges every record of the backup r into the cluster behind
// sink (nil sink: only reads and checks the file). Records are merged in
// batches while the file is read; a bad chunk stops it with an error that
// says where, after the batches before it landed: nothing merged is lost,
// and running it again on a good copy merges what is missing (merging is
// idempotent). The result counts the records merged, on error too.
func Restore(ctx context.Context, r io.Reader, sink Sink, opt RestoreOptions) (RestoreResult, error) {
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	setDefault(&opt.Workers, 4)
	setDefault(&opt.BatchRecords, 500)
	setDefault(&opt.BatchBytes, 4<<20)
	setDefault(&opt.Attempts, 3)
	if opt.Retry <= 0 {
		opt.Retry = 500 * time.Millisecond
	}
	rd, err := NewReader(r)
	if err != nil {
		return RestoreResult{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		merged  uint64
		mergeEr error
		wg      sync.WaitGroup
		// read is rd.Bytes() as of the last chunk, for the workers'
		// progress (the reader itself is the reading goroutine's).
		read atomic.Uint64
	)
	batches := make(chan []Record)
	for range opt.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for recs := range batches {
				err := mergeBatch(ctx, sink, recs, opt)
				mu.Lock()
				if err != nil {
					if mergeEr == nil {
						mergeEr = err
					}
					cancel()
				} else {
					merged += uint64(len(recs))
					if opt.Progress != nil {
						opt.Progress(Progress{Records: merged, Bytes: read.Load(), Elapsed: now().Sub(start)})
					}
				}
				mu.Unlock()
			}
		}()
	}
	var (
		batch     []Record
		batchSize int
		readErr   error
	)
	send := func() bool {
		if len(batch) == 0 {
			return true
		}
		select {
		case batches <- batch:
		case <-ctx.Done():
			return false
		}
		batch, batchSize = nil, 0
		return true
	}
read:
	for {
		recs, err := rd.Next()
		read.Store(rd.Bytes())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			readErr = err
			break
		}
		for _, rec := range recs {
			if sink == nil {
				continue
			}
			// The reader reuses its buffer: a batch owns copies.
			batch = append(batch, Record{Key: slices.Clone(rec.Key), Set: slices.Clone(rec.Set)})
			batchSize += len(rec.Key) + len(rec.Set)
			if len(batch) >= opt.BatchRecords || batchSize >= opt.BatchBytes {
				if !send() {
					break read
				}
			}
		}
	}
	// Records of whole chunks read before a bad one are merged too.
	send()
	close(batches)
	wg.Wait()
	res := RestoreResult{Records: merged, Bytes: read.Load(), Elapsed: now().Sub(start)}
	if sink == nil {
		res.Records = rd.Records()
	}
	switch {
	case mergeEr != nil:
		return res, fmt.Errorf("%d records merged before a batch failed: %w", merged, mergeEr)
	case readErr != nil:
		return res, fmt.Errorf("%d records merged, every one read before the error: %w", merged, readErr)
	case ctx.Err() != nil:
		return res, ctx.Err()
	}
	return res, nil
}

func mergeBatch(ctx context.Context, sink Sink, recs []Record, opt RestoreOptions) error {
	err := retry(ctx, opt.Attempts, opt.Retry, nil, func() error { return sink.Merge(ctx, recs) })
	if err != nil {
		return fmt.Errorf("merge %d records (first key %q), %d attempts: %w", len(recs), clip(recs[0].Key), opt.Attempts, err)
	}
	return nil
}

func setDefault(v *int, d int) {
	if *v <= 0 {
		*v = d
	}
}
