package listing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/ring"
)

// Request asks one replica for a page of one partition: from FromKey when
// HasKey, else from the cursor position From. It is the RPC's request
// (MethodListOrdered), so a Source sends it as it is.
type Request = wire.ListRequest

// Source reads one replica's page. It may be called concurrently.
type Source interface {
	List(ctx context.Context, node ring.NodeID, req Request) (Page, error)
}

// Query is one page of a scan.
type Query struct {
	// From is the scan's cursor.
	From Cursor
	// Prefix, when set, lists only keys starting with it (the replicas
	// skip the others).
	Prefix []byte
	// Match, when set, lists only keys it accepts (after the merge).
	Match func(key []byte) bool
	// Limit is the keys wanted (at least 1): a page holds at most about
	// that many, and may hold fewer, even none, before the scan ends.
	Limit int
	// N and W are the cluster's replication settings: each partition is
	// read from N-W+1 of its N primaries.
	N, W int
	// MaxPartitions bounds the partitions one page visits (at least 1), so
	// a page over an empty or filtered stretch of the ring ends in time.
	MaxPartitions int
	// ScanFactor times Limit is the most records a replica reads for
	// one scan page, over all the partitions it visits (at least 1), so a
	// selective prefix gives short pages, not slow ones.
	ScanFactor int
	// Now is the time (Unix nanoseconds) values' deadlines are judged at:
	// a key whose values have all expired is not listed.
	Now int64
	// ReadEntries, when positive, bounds the keys asked of a replica in
	// one read (else 512, the wire's room): smaller reads are shorter
	// bursts of work on the replicas.
	ReadEntries int
	// Pace, when positive, rests the scan between replica reads for Pace
	// times what they took (once it owes minRest, at most maxRest at a
	// time), so that a scan leaves the replicas' cores to point reads
	// between its reads: at a pace of 1 a scan works about half of its
	// time. A page whose context would expire in the rest ends early, with
	// a cursor.
	Pace float64
}

// Defaults for a node's scans (see Query): reads of 128 keys, each
// followed by a rest as long as the read. Measured in docs/BENCHMARKS.md
// ("Listing: what a scan costs point reads"): without them, point reads'
// p99 during a scan rose to several times its idle value.
const (
	DefaultReadEntries = 128
	DefaultPace        = 1.0
)

// A paced scan rests once it owes minRest (short reads, as of empty
// partitions, add up first: a timer's wake-up on a loaded machine costs
// milliseconds whatever it was set to), and at most maxRest at a time (a
// slow read, a replica that timed out, does not stall the scan for as long
// again).
const (
	minRest = 5 * time.Millisecond
	maxRest = 50 * time.Millisecond
)

// Result is a page of a scan.
type Result struct {
	Keys [][]byte
	// Next is the cursor of the next page, unless Done.
	Next Cursor
	// Done: the scan is complete.
	Done bool
	// Partitions is how many partition pages were read.
	Partitions int
}

// Per-request caps of a replica page (the wire's).
const (
	maxPageEntries = 512 // half of wire.MaxBatch: room for a run of colliding hashes
	maxPageScan    = 1 << 16
)

// ErrBadQuery is a Query out of range.
var ErrBadQuery = errors.New("listing: bad query")

// Scan reads one page of a scan over rg: from q.From, the partitions one
// after another in ring order and each in byte order of keys, each from
// N-W+1 primaries (the first that answer, in preference order), until
// q.Limit keys or q.MaxPartitions partition pages. Its cost is O(keys read
// + partitions visited). A partition whose replicas do not answer fails
// the page with a *quorum.QuorumError (op "scan"); the caller may retry
// the same cursor.
func Scan(ctx context.Context, src Source, rg *ring.Ring, q Query) (Result, error) {
	if q.Limit < 1 || q.MaxPartitions < 1 || q.N < 1 || q.W < 1 || q.W > q.N {
		return Result{}, fmt.Errorf("%w: limit %d, partitions %d, n %d, w %d", ErrBadQuery, q.Limit, q.MaxPartitions, q.N, q.W)
	}
	// The position: the cursor's hash, until the first partition page
	// placed it on a key (fromKey, hasKey).
	pos := uint64(q.From)
	var (
		fromKey []byte
		hasKey  bool
		res     Result
	)
	budget := q.Limit * max(q.ScanFactor, 1)
	readEntries := maxPageEntries
	if q.ReadEntries > 0 {
		readEntries = min(q.ReadEntries, maxPageEntries)
	}
	var took, owed time.Duration // the last read's time; the rest owed for the pace
	for res.Partitions < q.MaxPartitions && len(res.Keys) < q.Limit {
		p := rg.PartitionOfHash(pos)
		want := min(q.Limit-len(res.Keys), readEntries)
		if budget < want && res.Partitions > 0 {
			break // read enough for one page; the first always reads
		}
		if owed >= minRest {
			if !rest(ctx, min(owed, maxRest), took) {
				break // no time left for a rest and a read: the page ends here
			}
			owed = 0
		}
		req := Request{Partition: p, From: pos, FromKey: fromKey, HasKey: hasKey, Prefix: q.Prefix, Limit: want, Scan: min(max(budget, want), maxPageScan)}
		start := time.Now()
		m, err := readPartition(ctx, src, rg.Primaries(p, q.N), q.N-q.W+1, req, q.Now)
		if err != nil {
			return Result{}, err
		}
		took = time.Since(start)
		if q.Pace > 0 {
			owed += time.Duration(float64(took) * q.Pace)
		}
		res.Partitions++
		budget -= m.Scanned
		for _, k := range m.Keys {
			if q.Match == nil || q.Match(k) {
				res.Keys = append(res.Keys, k)
			}
		}
		if !m.Done {
			pos, fromKey, hasKey = m.NextHash, m.NextKey, true
			continue
		}
		if int(p)+1 >= rg.Partitions() {
			res.Done = true
			return res, nil
		}
		pos, fromKey, hasKey = rg.PartitionStart(p+1), nil, true
	}
	res.Next = Cursor(pos)
	return res, nil
}

// rest waits d before a paced scan's next read, unless ctx's deadline
// leaves less than d and twice the last read's time (read): then, or if
// ctx ends meanwhile, it reports false.
func rest(ctx context.Context, d, read time.Duration) bool {
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d+2*read {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// readPartition reads a partition's page from need of its owners and
// merges their answers. A page asked from a cursor (not HasKey) is placed
// by each replica on the smallest key it holds of the cursor's hash; if
// they do not all place it on the same key (one holds no such key: it
// missed the key, or the key was reaped), the page is asked again from
// the smallest key any placed it on, or from the partition's start if none
// could: at worst keys listed before are listed again, never skipped.
func readPartition(ctx context.Context, src Source, owners []ring.NodeID, need int, req Request, now int64) (Merged, error) {
	pages, err := readPages(ctx, src, owners, need, req)
	if err != nil {
		return Merged{}, err
	}
	if req.HasKey {
		return Merge(pages, now), nil
	}
	var start []byte
	placed, agree := 0, true
	for _, pg := range pages {
		if !pg.Resolved {
			agree = false
			continue
		}
		if placed > 0 && !bytes.Equal(pg.Start, start) {
			agree = false
		}
		if placed == 0 || bytes.Compare(pg.Start, start) < 0 {
			start = pg.Start
		}
		placed++
	}
	if agree {
		return Merge(pages, now), nil
	}
	req.FromKey, req.HasKey = start, true
	if pages, err = readPages(ctx, src, owners, need, req); err != nil {
		return Merged{}, err
	}
	return Merge(pages, now), nil
}

// readPages asks need of owners for the page, in preference order,
// replacing those that fail with the next ones.
func readPages(ctx context.Context, src Source, owners []ring.NodeID, need int, req Request) ([]Page, error) {
	need = min(need, len(owners))
	type reply struct {
		page Page
		err  error
	}
	out := make(chan reply, len(owners))
	ask := func(id ring.NodeID) {
		go func() {
			pg, err := src.List(ctx, id, req)
			if err != nil {
				err = fmt.Errorf("%s: %w", id, err)
			}
			out <- reply{pg, err}
		}()
	}
	next := 0
	for ; next < need; next++ {
		ask(owners[next])
	}
	var (
		pages []Page
		errs  []error
	)
	for pending := need; pending > 0; pending-- {
		r := <-out
		if r.err == nil {
			pages = append(pages, r.page)
			continue
		}
		errs = append(errs, r.err)
		if next < len(owners) {
			ask(owners[next])
			next++
			pending++
		}
	}
	if len(pages) < need || need == 0 {
		return nil, &quorum.QuorumError{Op: "scan", Required: need, Acks: len(pages), Targets: len(owners), Errs: errs}
	}
	return pages, nil
}
