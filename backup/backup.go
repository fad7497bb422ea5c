package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/quorumkv/quorumkv/vclock"
)

// Layout is what a backup needs to know of the source cluster.
type Layout struct {
	// Partitions is Q; N the replication factor the primaries are listed for.
	Partitions, N int
	// Primaries lists each partition's primaries, in preference order.
	Primaries [][]string
	// Nodes are the members to read from (every member of the ring).
	Nodes []string
}

// Source reads a cluster's replicas. Implementations must be safe for
// concurrent use; fn is called from one goroutine per call and its Record
// is valid only during fn.
type Source interface {
	// Layout returns the cluster's partitions, primaries and members.
	Layout(ctx context.Context) (Layout, error)
	// Records calls fn with node's stored copy of every key of partition p
	// (its records, not its hints), ending with a nil error only once the
	// node said the stream was complete.
	Records(ctx context.Context, node string, p uint32, fn func(Record) error) error
	// Hints calls fn with every hint node holds for other nodes (writes a
	// sloppy quorum acknowledged there for a primary that was down).
	Hints(ctx context.Context, node string, fn func(Record) error) error
}

// Progress is the state of a backup or restore, for a progress line.
type Progress struct {
	// PartitionsDone of Partitions (backup only).
	PartitionsDone, Partitions int
	// Records written (backup) or merged into the cluster (restore).
	Records uint64
	// Bytes written to (backup) or read from (restore) the file.
	Bytes   uint64
	Elapsed time.Duration
}

// Options tune Backup.
type Options struct {
	// MinPrimaries is how many primaries of each partition must answer;
	// 0 means all N. N-W+1 is the least that still includes every write
	// acknowledged by W primaries; hints cover the writes fallbacks
	// acknowledged.
	MinPrimaries int
	// Workers is how many partitions are read at once; 0 means 4.
	Workers int
	// Progress, if set, is called after each partition (from the writing
	// goroutine; it must not block for long).
	Progress func(Progress)
	// Now stamps the header; nil means time.Now.
	Now func() time.Time
}

// Result is what Backup did.
type Result struct {
	Keys       uint64
	Bytes      uint64
	Partitions int
	// Hints is how many hint copies were merged in.
	Hints int
	// Unreachable names the members that did not answer (with the first
	// error of each); their partitions were read from the other primaries.
	Unreachable map[string]string
	Elapsed     time.Duration
}

// Backup writes every key of the cluster src reads to w: for each
// partition it merges (vclock.Sync) the copies of every reachable member
// (primaries, and former owners still handing a partition over) and every
// hint a member holds, so every acknowledged write is in the file whatever
// replica acknowledged it. It fails if fewer than opt.MinPrimaries
// primaries of some partition answered. On error the file is incomplete
// (no end chunk) and a Reader refuses it.
func Backup(ctx context.Context, src Source, w io.Writer, opt Options) (Result, error) {
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	lay, err := src.Layout(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("read the cluster's layout: %w", err)
	}
	if lay.Partitions <= 0 || len(lay.Primaries) != lay.Partitions || len(lay.Nodes) == 0 {
		return Result{}, fmt.Errorf("cluster layout: %d partitions, %d primary lists, %d nodes", lay.Partitions, len(lay.Primaries), len(lay.Nodes))
	}
	minP := opt.MinPrimaries
	if minP <= 0 || minP > lay.N {
		minP = lay.N
	}
	b := &backupRun{src: src, lay: lay, minPrimaries: minP, retryWait: readRetry, down: map[string]string{}}
	if err := b.readHints(ctx); err != nil {
		return Result{}, err
	}
	bw, err := NewWriter(w, Meta{Created: start.UTC(), Partitions: lay.Partitions, N: lay.N,
		Note: fmt.Sprintf("each partition merged from every reachable member (at least %d of %d primaries) plus every hint", minP, lay.N)})
	if err != nil {
		return Result{}, err
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = 4
	}
	// Partitions are read by workers and written in order: a queue of
	// futures bounds how many merged partitions wait in memory.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type future struct {
		p   uint32
		out chan partResult
	}
	queue := make(chan future, workers)
	var wg sync.WaitGroup
	sem := make(chan struct{}, workers)
	go func() {
		defer close(queue)
		for p := range lay.Partitions {
			f := future{p: uint32(p), out: make(chan partResult, 1)}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				recs, err := b.partition(ctx, f.p)
				f.out <- partResult{recs, err}
			}()
			select {
			case queue <- f:
			case <-ctx.Done():
				return
			}
		}
	}()
	res := Result{Partitions: lay.Partitions}
	var ferr error
	done := 0
	for f := range queue {
		r := <-f.out
		if ferr != nil {
			continue
		}
		if r.err != nil {
			ferr = fmt.Errorf("partition %d: %w", f.p, r.err)
			cancel()
			continue
		}
		for _, rec := range r.recs {
			if err := bw.Add(rec); err != nil {
				ferr = err
				cancel()
				break
			}
		}
		done++
		if opt.Progress != nil && ferr == nil {
			opt.Progress(Progress{PartitionsDone: done, Partitions: lay.Partitions, Records: bw.Records(), Bytes: bw.Bytes(), Elapsed: now().Sub(start)})
		}
	}
	wg.Wait()
	if ferr == nil {
		ferr = ctx.Err()
	}
	if ferr != nil {
		return Result{}, ferr
	}
	// Hints of keys no member holds a record of (every primary missed the
	// write): written last, as records of their own.
	for _, k := range b.hintKeys() {
		if err := bw.Add(Record{Key: []byte(k), Set: b.hints[k]}); err != nil {
			return Result{}, err
		}
	}
	if err := bw.Close(); err != nil {
		return Result{}, err
	}
	res.Keys, res.Bytes, res.Hints, res.Elapsed = bw.Records(), bw.Bytes(), b.hintCopies, now().Sub(start)
	if len(b.down) > 0 {
		res.Unreachable = b.down
	}
	return res, nil
}

type partResult struct {
	recs []Record
	err  error
}

// backupRun is one Backup's shared state.
type backupRun struct {
	src          Source
	lay          Layout
	minPrimaries int
	retryWait    time.Duration

	mu         sync.Mutex
	down       map[string]string // members that failed, with their first error
	hints      map[string][]byte // hint sets by key, merged across members
	hintCopies int
}

// downReason returns why node was marked down ("" if it was not).
func (b *backupRun) downReason(node string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.down[node]
}

func (b *backupRun) markDown(node string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.down[node]; !ok {
		b.down[node] = err.Error()
	}
}

// Reads of a member are tried readAttempts times, readRetry apart (then
// doubled), before it is taken for down: a loaded member may time out once.
const (
	readAttempts = 3
	readRetry    = 200 * time.Millisecond
)

// retry runs read until it succeeds, fails with a corrupt set (which a
// second read would not mend), or has failed readAttempts times.
func (b *backupRun) retry(ctx context.Context, read func() error) error {
	return retry(ctx, readAttempts, b.retryWait, func(err error) bool {
		var ce *CorruptSetError
		return errors.As(err, &ce)
	}, read)
}

// retry calls fn up to attempts times, waiting wait before the second
// call and twice as long before each next, until it succeeds, final(err)
// says another call is pointless, or ctx ends. It returns fn's last error.
func retry(ctx context.Context, attempts int, wait time.Duration, final func(error) bool, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt >= attempts || ctx.Err() != nil || final != nil && final(err) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		wait *= 2
	}
}

// readHints gathers every member's hints. A member that does not answer
// is marked down (its partitions are then read from the other primaries).
func (b *backupRun) readHints(ctx context.Context) error {
	b.hints = map[string][]byte{}
	for _, node := range b.lay.Nodes {
		var copies map[string][]byte
		err := b.retry(ctx, func() error {
			copies = map[string][]byte{}
			return b.src.Hints(ctx, node, func(r Record) error { return mergeInto(copies, r) })
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			b.markDown(node, err)
			continue
		}
		for k, s := range copies {
			b.hintCopies++
			if err := mergeInto(b.hints, Record{Key: []byte(k), Set: s}); err != nil {
				return err
			}
		}
	}
	return nil
}

// hintKeys returns the keys of the hints no partition took, sorted.
func (b *backupRun) hintKeys() []string {
	return slices.Sorted(maps.Keys(b.hints))
}

// partition reads partition p from every member not known to be down and
// merges the copies (and the hints of its keys), sorted by key.
func (b *backupRun) partition(ctx context.Context, p uint32) ([]Record, error) {
	merged := map[string][]byte{}
	answered := 0
	var errs []error
	for _, node := range b.lay.Nodes {
		if why := b.downReason(node); why != "" {
			errs = append(errs, fmt.Errorf("%s did not answer: %s", node, why))
			continue
		}
		// Each member's copy is gathered whole before merging, so a
		// stream cut midway adds nothing partial.
		var copies map[string][]byte
		err := b.retry(ctx, func() error {
			copies = map[string][]byte{}
			return b.src.Records(ctx, node, p, func(r Record) error { return mergeInto(copies, r) })
		})
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			var ce *CorruptSetError
			if errors.As(err, &ce) {
				return nil, err
			}
			b.markDown(node, err)
			errs = append(errs, fmt.Errorf("%s: %w", node, err))
			continue
		}
		if slices.Contains(b.lay.Primaries[p], node) {
			answered++
		}
		for k, s := range copies {
			if err := mergeInto(merged, Record{Key: []byte(k), Set: s}); err != nil {
				return nil, err
			}
		}
	}
	if need := min(b.minPrimaries, len(b.lay.Primaries[p])); answered < need {
		return nil, fmt.Errorf("%w: %d of %v answered, %d needed to include every acknowledged write: %w",
			ErrTooFewPrimaries, answered, b.lay.Primaries[p], need, errors.Join(errs...))
	}
	b.mu.Lock()
	for k := range merged {
		if h, ok := b.hints[k]; ok {
			if err := mergeInto(merged, Record{Key: []byte(k), Set: h}); err != nil {
				b.mu.Unlock()
				return nil, err
			}
			delete(b.hints, k)
		}
	}
	b.mu.Unlock()
	out := make([]Record, 0, len(merged))
	for k, s := range merged {
		out = append(out, Record{Key: []byte(k), Set: s})
	}
	slices.SortFunc(out, func(a, b Record) int { return bytes.Compare(a.Key, b.Key) })
	return out, nil
}

// ErrTooFewPrimaries: fewer primaries of a partition answered than
// Options.MinPrimaries.
var ErrTooFewPrimaries = errors.New("too few primaries answered")

// CorruptSetError is a set that does not decode: the backup stops rather
// than write or drop it silently.
type CorruptSetError struct {
	Key []byte
	Err error
}

func (e *CorruptSetError) Error() string {
	return fmt.Sprintf("key %q: set does not decode: %v", clip(e.Key), e.Err)
}

func (e *CorruptSetError) Unwrap() error { return e.Err }

// mergeInto merges r's set into m[r.Key] with vclock.Sync (a copy of r is
// kept: r may alias a reader's buffer). Identical copies, the usual case
// between replicas in sync, are not decoded.
func mergeInto(m map[string][]byte, r Record) error {
	cur, ok := m[string(r.Key)]
	if !ok {
		// Checked once here, so a set that would fail the restore is
		// found now, while its replicas can still be asked.
		if _, err := vclock.DecodeSet(r.Set); err != nil {
			return &CorruptSetError{Key: bytes.Clone(r.Key), Err: err}
		}
		m[string(r.Key)] = bytes.Clone(r.Set)
		return nil
	}
	if bytes.Equal(cur, r.Set) {
		return nil
	}
	a, err := vclock.DecodeSet(cur)
	if err != nil {
		return &CorruptSetError{Key: bytes.Clone(r.Key), Err: err}
	}
	s, err := vclock.DecodeSet(r.Set)
	if err != nil {
		return &CorruptSetError{Key: bytes.Clone(r.Key), Err: err}
	}
	enc, err := vclock.Sync(a, s).MarshalBinary()
	if err != nil {
		return err
	}
	m[string(r.Key)] = enc
	return nil
}
