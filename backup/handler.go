package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/httpapi"
	"github.com/quorumkv/quorumkv/replica"
	"github.com/quorumkv/quorumkv/ring"
)

// The admin endpoints of `quorumkv backup` and `restore`, served over a
// Host (the node registers the routes):
//
//	GET  /admin/backup/records?partition=P  this node's records of P, as a backup stream
//	GET  /admin/backup/hints                 every hint this node holds, as a backup stream
//	POST /admin/backup/merge                 a backup stream, merged into every replica of each key
const (
	// pageBytes is how much of a partition one store scan reads before
	// the page is sent: the store's snapshot is not held while the client
	// reads.
	pageBytes = 1 << 20
	// maxHintBytes bounds the hints one /admin/backup/hints answer holds
	// in memory (hinted handoff's caps keep hints far below it).
	maxHintBytes = 256 << 20
	// maxMergeBody bounds a merge request (the restore driver sends 4 MiB
	// batches, plus at most one record).
	maxMergeBody = 32 << 20
	// mergeWorkers is how many replica merges (each of a target's
	// records of the request) of one merge request run at once.
	mergeWorkers = 16
)

// Host is what the backup endpoints need of a node.
type Host interface {
	// NodeID names the node in stream headers and merge answers.
	NodeID() string
	// Partitions is the ring's partition count.
	Partitions() int
	// MaxKeySize is the longest key the cluster accepts.
	MaxKeySize() int
	// Scan walks the node's stored records (replica envelopes) of
	// partition p with key hashes lo to hi, in hash order.
	Scan(p uint32, lo, hi uint64, fn func(k ring.Key, rec []byte) error) error
	// HintTargets lists the nodes the node holds hints for.
	HintTargets() []string
	// ScanHints walks the hints held for target (replica envelopes).
	ScanHints(target string, fn func(k ring.Key, rec []byte) error) error
	// Replicas returns N and, from one view of the ring, the current
	// targets of a key's partition (fallbacks as hints) and the merge of
	// records into one of them (each record has that target among its
	// own).
	Replicas() (n int, targets func(key []byte) []Target, merge func(ctx context.Context, t Target, recs []Record) error)
}

// Target is one replica of a partition: a restore batch's records with
// the same Target are merged into it in one call.
type Target struct {
	ring.Target
	Partition uint32
}

// Handlers serves the backup endpoints over Host.
type Handlers struct {
	Host Host
	Log  *slog.Logger
}

// Semaphores bound the backup requests served at once, and so their
// memory: merges (up to maxMergeBody each), record streams (a page each)
// and hint streams (up to maxHintBytes each). They are per process,
// which is per node for the agent (tests that run several nodes in one
// process share them, which only slows them).
var (
	mergeSem  = make(chan struct{}, 2)
	streamSem = make(chan struct{}, 8)
	hintsSem  = make(chan struct{}, 1)
)

// acquire takes a slot of sem, or reports false when the request ended
// while it waited.
func acquire(r *http.Request, sem chan struct{}) bool {
	select {
	case sem <- struct{}{}:
		return true
	case <-r.Context().Done():
		return false
	}
}

// ContentType is the media type of a backup stream.
const ContentType = "application/x-quorumkv-backup"

// writeTimeout bounds each write of a backup stream: a reader that stops
// reading frees its stream slot after it.
const writeTimeout = 30 * time.Second

// streamWriter is a stream's response writer with a write deadline renewed
// before each write.
type streamWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func newStreamWriter(w http.ResponseWriter) streamWriter {
	w.Header().Set("Content-Type", ContentType)
	return streamWriter{w: w, rc: http.NewResponseController(w)}
}

func (s streamWriter) Write(b []byte) (int, error) {
	_ = s.rc.SetWriteDeadline(time.Now().Add(writeTimeout)) // unsupported: no deadline
	return s.w.Write(b)
}

// Stream serves GET /admin/backup/{what}: records and hints.
func (h Handlers) Stream(w http.ResponseWriter, r *http.Request) {
	switch r.PathValue("what") {
	case "records":
		if acquire(r, streamSem) {
			defer func() { <-streamSem }()
			h.records(w, r)
		}
	case "hints":
		if acquire(r, hintsSem) {
			defer func() { <-hintsSem }()
			h.hints(w)
		}
	default:
		httpapi.WriteError(w, http.StatusNotFound, api.CodeUnknownPath, "no such endpoint: see /admin/backup/records?partition=P and /admin/backup/hints")
	}
}

// records streams this node's records of one partition: the stored sets
// as they are, siblings, tombstones and contexts included. Pages are read
// from the store one at a time, so a slow reader holds no store snapshot.
func (h Handlers) records(w http.ResponseWriter, r *http.Request) {
	q := h.Host.Partitions()
	v := r.URL.Query().Get("partition")
	p64, err := strconv.ParseUint(v, 10, 32)
	if err != nil || p64 >= uint64(q) {
		httpapi.WriteJSON(w, http.StatusBadRequest, api.Error{Error: fmt.Sprintf("partition %q: want 0 to %d", v, q-1), Code: api.CodeBadParameter, Param: "partition"})
		return
	}
	p := uint32(p64)
	page, next, more, err := h.page(p, 0)
	if err != nil {
		httpapi.WriteError(w, http.StatusServiceUnavailable, api.CodeUnavailable, err.Error())
		return
	}
	err = WriteStream(newStreamWriter(w), Meta{Source: h.Host.NodeID(), Partitions: q, Partition: &p}, page, more, func() ([]Record, bool, error) {
		page, next, more, err = h.page(p, next)
		return page, more, err
	})
	if err != nil {
		// The header is out: cutting the stream short is the only way left
		// to say it failed (the reader reports it truncated).
		if h.Log != nil {
			h.Log.Warn("backup stream cut", "partition", p, "err", err)
		}
		panic(http.ErrAbortHandler)
	}
}

// page reads about pageBytes of partition p's records from key hash lo
// on, ending at a hash boundary (so keys of one hash are never split
// between pages); next is the hash the following page starts at.
func (h Handlers) page(p uint32, lo uint64) (page []Record, next uint64, more bool, err error) {
	size := 0
	errPageFull := errors.New("page full")
	err = h.Host.Scan(p, lo, ^uint64(0), func(k ring.Key, rec []byte) error {
		if size >= pageBytes && len(page) > 0 && k.Hash != next {
			next, more = k.Hash, true
			return errPageFull
		}
		set := replica.SetBytes(rec)
		if set == nil {
			return nil // an envelope that does not parse reads as absent everywhere
		}
		page = append(page, Record{Key: bytes.Clone(k.Key), Set: bytes.Clone(set)})
		size += len(k.Key) + len(set)
		next = k.Hash
		return nil
	})
	if errors.Is(err, errPageFull) {
		err = nil
	}
	return page, next, more, err
}

// hints streams every hint this node holds for other nodes.
func (h Handlers) hints(w http.ResponseWriter) {
	var (
		recs []Record
		size int
	)
	for _, target := range h.Host.HintTargets() {
		err := h.Host.ScanHints(target, func(k ring.Key, val []byte) error {
			set := replica.SetBytes(val)
			if set == nil {
				return nil
			}
			if size += len(k.Key) + len(set); size > maxHintBytes {
				return fmt.Errorf("more than %d MiB of hints: let hinted handoff deliver them first", maxHintBytes>>20)
			}
			recs = append(recs, Record{Key: bytes.Clone(k.Key), Set: bytes.Clone(set)})
			return nil
		})
		if err != nil {
			httpapi.WriteError(w, http.StatusServiceUnavailable, api.CodeUnavailable, fmt.Sprintf("hints for %s: %v", target, err))
			return
		}
	}
	if err := WriteStream(newStreamWriter(w), Meta{Source: h.Host.NodeID(), Note: "hints"}, recs, false, nil); err != nil {
		panic(http.ErrAbortHandler)
	}
}

// MergeAnswer is the body of a successful POST /admin/backup/merge.
type MergeAnswer struct {
	Node    string `json:"node"`
	Records int    `json:"records"`
	// Replicas is how many replica merges landed (records x N when all did).
	Replicas int `json:"replicas"`
}

// Merge serves POST /admin/backup/merge: each key's set goes to every
// target of its partition on the node's ring (live primaries, fallbacks
// as hints for dead ones) through the replica merge that hinted handoff
// and read repair use, so nothing newer is overwritten and no sibling is
// dropped. It answers 200 only when every record reached N targets;
// otherwise 503 and the restore tries the batch again.
func (h Handlers) Merge(w http.ResponseWriter, r *http.Request) {
	if !acquire(r, mergeSem) {
		return
	}
	defer func() { <-mergeSem }()
	recs, err := ReadBatch(http.MaxBytesReader(w, r.Body, maxMergeBody), h.Host.MaxKeySize())
	if err != nil {
		httpapi.WriteError(w, http.StatusBadRequest, api.CodeBadBody, fmt.Sprintf("merge body: %v", err))
		return
	}
	nv, targets, merge := h.Host.Replicas()
	landed, err := Replicate(r.Context(), recs, nv, mergeWorkers, targets, merge)
	if err != nil {
		httpapi.WriteError(w, http.StatusServiceUnavailable, api.CodeUnavailable,
			fmt.Sprintf("%d of %d replica merges landed; %v", landed, len(recs)*nv, err))
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, MergeAnswer{Node: h.Host.NodeID(), Records: len(recs), Replicas: landed})
}
