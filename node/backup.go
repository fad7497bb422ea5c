package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/backup"
	"github.com/quorumkv/quorumkv/replica"
	"github.com/quorumkv/quorumkv/ring"
)

// The admin endpoints of `quorumkv backup` and `restore` (package backup
// holds the format and the drivers):
//
//	GET  /admin/backup/records?partition=P  this node's records of P, as a backup stream
//	GET  /admin/backup/hints                 every hint this node holds, as a backup stream
//	POST /admin/backup/merge                 a backup stream, merged into every replica of each key
const (
	// backupPageBytes is how much of a partition one store scan reads
	// before the page is sent: the store's snapshot is not held while
	// the client reads.
	backupPageBytes = 1 << 20
	// maxHintBackupBytes bounds the hints one /admin/backup/hints answer
	// holds in memory (hinted handoff's caps keep hints far below it).
	maxHintBackupBytes = 256 << 20
	// maxMergeBody bounds a merge request (the restore driver sends 4 MiB
	// batches, plus at most one record).
	maxMergeBody = 32 << 20
	// mergeWorkers is how many keys of one merge request are replicated
	// at once.
	mergeWorkers = 16
)

// Semaphores bound the backup requests served at once, and so their
// memory: merges (up to maxMergeBody each), record streams (a page each)
// and hint streams (up to maxHintBackupBytes each). They are per process,
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

const backupContentType = "application/x-quorumkv-backup"

// backupWriteTimeout bounds each write of a backup stream: a reader that
// stops reading frees its stream slot after it.
const backupWriteTimeout = 30 * time.Second

// streamWriter is a stream's response writer with a write deadline renewed
// before each write.
type streamWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func newStreamWriter(w http.ResponseWriter) streamWriter {
	w.Header().Set("Content-Type", backupContentType)
	return streamWriter{w: w, rc: http.NewResponseController(w)}
}

func (s streamWriter) Write(b []byte) (int, error) {
	_ = s.rc.SetWriteDeadline(time.Now().Add(backupWriteTimeout)) // unsupported: no deadline
	return s.w.Write(b)
}

// handleBackupRecords streams this node's records of one partition: the
// stored sets as they are, siblings, tombstones and contexts included.
// Pages are read from the store one at a time, so a slow reader holds no
// store snapshot.
func (n *Node) handleBackupRecords(w http.ResponseWriter, r *http.Request) {
	q := n.Ring().Partitions()
	v := r.URL.Query().Get("partition")
	p64, err := strconv.ParseUint(v, 10, 32)
	if err != nil || p64 >= uint64(q) {
		writeJSON(w, http.StatusBadRequest, api.Error{Error: fmt.Sprintf("partition %q: want 0 to %d", v, q-1), Code: api.CodeBadParameter, Param: "partition"})
		return
	}
	p := uint32(p64)
	page, next, more, err := n.backupPage(p, 0)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, api.CodeUnavailable, err.Error())
		return
	}
	err = backup.WriteStream(newStreamWriter(w), backup.Meta{Source: n.cfg.NodeID, Partitions: q, Partition: &p}, page, more, func() ([]backup.Record, bool, error) {
		page, next, more, err = n.backupPage(p, next)
		return page, more, err
	})
	if err != nil {
		// The header is out: cutting the stream short is the only way left
		// to say it failed (the reader reports it truncated).
		n.log.Warn("backup stream cut", "partition", p, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// backupPage reads about backupPageBytes of partition p's records from key
// hash lo on, ending at a hash boundary (so keys of one hash are never
// split between pages); next is the hash the following page starts at.
func (n *Node) backupPage(p uint32, lo uint64) (page []backup.Record, next uint64, more bool, err error) {
	size := 0
	errPageFull := errors.New("page full")
	err = n.rep.Scan(p, lo, ^uint64(0), func(k ring.Key, rec []byte) error {
		if size >= backupPageBytes && len(page) > 0 && k.Hash != next {
			next, more = k.Hash, true
			return errPageFull
		}
		set := replica.SetBytes(rec)
		if set == nil {
			return nil // an envelope that does not parse reads as absent everywhere
		}
		page = append(page, backup.Record{Key: bytes.Clone(k.Key), Set: bytes.Clone(set)})
		size += len(k.Key) + len(set)
		next = k.Hash
		return nil
	})
	if errors.Is(err, errPageFull) {
		err = nil
	}
	return page, next, more, err
}

// handleBackupHints streams every hint this node holds for other nodes.
func (n *Node) handleBackupHints(w http.ResponseWriter, r *http.Request) {
	var (
		recs []backup.Record
		size int
	)
	for _, target := range n.st.HintTargets() {
		err := n.st.ScanHints(target, func(k ring.Key, val []byte) error {
			set := replica.SetBytes(val)
			if set == nil {
				return nil
			}
			if size += len(k.Key) + len(set); size > maxHintBackupBytes {
				return fmt.Errorf("more than %d MiB of hints: let hinted handoff deliver them first", maxHintBackupBytes>>20)
			}
			recs = append(recs, backup.Record{Key: bytes.Clone(k.Key), Set: bytes.Clone(set)})
			return nil
		})
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, api.CodeUnavailable, fmt.Sprintf("hints for %s: %v", target, err))
			return
		}
	}
	if err := backup.WriteStream(newStreamWriter(w), backup.Meta{Source: n.cfg.NodeID, Note: "hints"}, recs, false, nil); err != nil {
		panic(http.ErrAbortHandler)
	}
}

// mergeAnswer is the body of a successful POST /admin/backup/merge.
type mergeAnswer struct {
	Node    string `json:"node"`
	Records int    `json:"records"`
	// Replicas is how many replica merges landed (records x N when all did).
	Replicas int `json:"replicas"`
}

// handleBackupMerge merges a backup stream into the cluster: each key's set
// goes to every target of its partition on this node's ring (live
// primaries, fallbacks as hints for dead ones) through the replica merge
// that hinted handoff and read repair use, so nothing newer is overwritten
// and no sibling is dropped. It answers 200 only when every record reached
// N targets; otherwise 503 and the restore tries the batch again.
func (n *Node) handleBackupMerge(w http.ResponseWriter, r *http.Request) {
	if !acquire(r, mergeSem) {
		return
	}
	defer func() { <-mergeSem }()
	recs, err := backup.ReadBatch(http.MaxBytesReader(w, r.Body, maxMergeBody), n.cfg.MaxKeySize)
	if err != nil {
		writeError(w, http.StatusBadRequest, api.CodeBadBody, fmt.Sprintf("merge body: %v", err))
		return
	}
	// A target with its key's address on this node's ring.
	type target struct {
		k ring.Key
		t ring.Target
	}
	nv, rg, reps := n.defaultN(), n.Ring(), replicas{n}
	landed, err := backup.Replicate(r.Context(), recs, nv, mergeWorkers, func(key []byte) []target {
		k := rg.KeyOf(key)
		var ts []target
		for _, t := range rg.Targets(k.Partition, nv, n.Alive) {
			ts = append(ts, target{k, t})
		}
		return ts
	}, func(ctx context.Context, t target, set []byte) error {
		if _, err := reps.Merge(ctx, t.t, t.k, set, false); err != nil {
			return fmt.Errorf("%s: %w", t.t.Node, err)
		}
		return nil
	})
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, api.CodeUnavailable,
			fmt.Sprintf("%d of %d replica merges landed; %v", landed, len(recs)*nv, err))
		return
	}
	writeJSON(w, http.StatusOK, mergeAnswer{Node: n.cfg.NodeID, Records: len(recs), Replicas: landed})
}

// handleBackupStream serves GET /admin/backup/records and /hints.
func (n *Node) handleBackupStream(w http.ResponseWriter, r *http.Request) {
	switch r.PathValue("what") {
	case "records":
		if acquire(r, streamSem) {
			defer func() { <-streamSem }()
			n.handleBackupRecords(w, r)
		}
	case "hints":
		if acquire(r, hintsSem) {
			defer func() { <-hintsSem }()
			n.handleBackupHints(w, r)
		}
	default:
		writeError(w, http.StatusNotFound, api.CodeUnknownPath, "no such endpoint: see /admin/backup/records?partition=P and /admin/backup/hints")
	}
}
