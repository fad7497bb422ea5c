package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/listing"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/replica"
	"github.com/quorumkv/quorumkv/resp"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/vclock"
)

// Listing keys (HTTP GET /kv, RESP SCAN) is package listing's; this file
// serves its replica pages (wire.MethodList) and runs its scans.

// Scan settings of a page.
const (
	// scanMaxPartitions bounds the partition pages one scan page reads, so
	// a page over an empty stretch of the ring answers in time (a cluster
	// of 1024 partitions is walked in 16 such pages).
	scanMaxPartitions = 64
	// scanFactor times the keys wanted is the most records a replica
	// reads for one scan page: a selective prefix gives short pages, not
	// slow ones.
	scanFactor = 16
	// MaxScanLimit caps the keys one scan page asks for.
	MaxScanLimit = 10000
)

// ScanQuery is one page of a scan: see listing.Query.
type ScanQuery struct {
	From   listing.Cursor
	Prefix []byte
	Match  func(key []byte) bool
	Limit  int
	// Timeout bounds the page; 0 means the default request timeout.
	Timeout time.Duration
}

// Scan reads one page of keys across the cluster (package listing), each
// partition from N-W+1 of its primaries under the node's default N and W
// (fitted to the ring), within the default timeout.
func (n *Node) Scan(ctx context.Context, q ScanQuery) (listing.Result, error) {
	if q.Limit < 1 || q.Limit > MaxScanLimit {
		return listing.Result{}, &quorum.ParamError{Param: "limit", Msg: fmt.Sprintf("limit=%d: want 1 to %d", q.Limit, MaxScanLimit)}
	}
	p, _, err := n.fit(quorum.Params{})
	if err != nil {
		return listing.Result{}, err
	}
	p = p.WithDefaults(n.cfg.Defaults)
	timeout := q.Timeout
	if timeout <= 0 {
		timeout = n.cfg.Defaults.Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return listing.Scan(ctx, listSource{n}, n.Ring(), listing.Query{
		From: q.From, Prefix: q.Prefix, Match: q.Match, Limit: q.Limit,
		N: p.N, W: min(p.W, p.N), MaxPartitions: scanMaxPartitions, ScanFactor: scanFactor,
	})
}

// listSource reads replica pages: this node's directly, others' by RPC.
type listSource struct{ n *Node }

func (s listSource) List(ctx context.Context, id ring.NodeID, req listing.Request) (listing.Page, error) {
	wreq := wire.ListRequest{Partition: req.Partition, From: req.From, Prefix: req.Prefix, Limit: req.Limit, Scan: req.Scan}
	var resp wire.ListResponse
	if string(id) == s.n.cfg.NodeID {
		var err error
		if resp, err = s.n.listPage(wreq); err != nil {
			return listing.Page{}, err
		}
	} else if err := (replicas{s.n}).call(ctx, id, wire.MethodList, &wreq, &resp); err != nil {
		return listing.Page{}, err
	}
	pg := listing.Page{Next: resp.Next, Done: resp.Done, Scanned: resp.Scanned, Entries: make([]listing.Entry, len(resp.Entries))}
	for i, e := range resp.Entries {
		set, err := vclock.DecodeSet(e.Set)
		if err != nil {
			return listing.Page{}, fmt.Errorf("list page from %s: %w", id, err)
		}
		pg.Entries[i] = listing.Entry{Hash: e.Hash, Key: e.Key, Set: set}
	}
	return pg, nil
}

// serveList answers wire.MethodList.
func (n *Node) serveList(body []byte) ([]byte, error) {
	var req wire.ListRequest
	if err := req.Decode(body); err != nil {
		return nil, invalid("list: %v", err)
	}
	resp, err := n.listPage(req)
	if err != nil {
		return nil, err
	}
	return resp.Append(nil)
}

// listPage walks this node's records of a partition in store order from
// req.From (a seek, not a scan of what comes before) and builds the page.
// Tombstones every primary confirmed holding are left out: no replica
// can hold a value they would have to supersede in the merge. Other
// tombstones go out, so that they do.
func (n *Node) listPage(req wire.ListRequest) (wire.ListResponse, error) {
	rg := n.Ring()
	if int(req.Partition) >= rg.Partitions() || rg.PartitionOfHash(req.From) != req.Partition {
		return wire.ListResponse{}, invalid("list: partition %d, from %x: not a position of the partition", req.Partition, req.From)
	}
	end := ^uint64(0)
	if int(req.Partition)+1 < rg.Partitions() {
		end = rg.PartitionStart(req.Partition+1) - 1
	}
	b := listing.Builder{Prefix: req.Prefix, Limit: req.Limit, Scan: req.Scan, Bytes: wire.BatchBytes}
	var resp wire.ListResponse
	errStop := errors.New("page full")
	err := n.rep.Scan(req.Partition, req.From, end, func(k ring.Key, rec []byte) error {
		take, stop := b.Offer(k.Hash, k.Key)
		if stop {
			return errStop
		}
		if !take {
			return nil
		}
		h, err := replica.ParseHeader(rec)
		if err != nil || h.Confirmed() {
			return nil // a malformed record reads as absent everywhere
		}
		set, err := vclock.DecodeSet(rec[h.SetOff:])
		if err != nil {
			return nil
		}
		enc, err := listing.Strip(set).MarshalBinary()
		if err != nil {
			return err
		}
		resp.Entries = append(resp.Entries, wire.ListEntry{Hash: k.Hash, Key: append([]byte(nil), k.Key...), Set: enc})
		b.Add(len(k.Key) + len(enc))
		return nil
	})
	if err != nil && err != errStop {
		return wire.ListResponse{}, err
	}
	if len(resp.Entries) > wire.MaxBatch {
		return wire.ListResponse{}, fmt.Errorf("list: %d keys share one hash", len(resp.Entries))
	}
	resp.Next, resp.Done = b.End()
	resp.Scanned = b.Scanned()
	return resp, nil
}

// listParams are the parameters of GET /kv.
var listParams = map[string]bool{"prefix": true, "after": true, "limit": true, "timeout": true}

// defaultListLimit is the keys of a GET /kv page that names no limit.
const defaultListLimit = 1000

// handleList answers GET /kv?prefix=P&after=CURSOR&limit=N with an
// api.KeyList.
func (n *Node) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, err := n.parseParams(q, listParams)
	if err != nil {
		n.writeErr(w, "list", err)
		return
	}
	from, err := listing.ParseCursor(q.Get("after"))
	if err != nil {
		n.writeErr(w, "list", &quorum.ParamError{Param: "after", Msg: err.Error()})
		return
	}
	limit := defaultListLimit
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil {
			n.writeErr(w, "list", &quorum.ParamError{Param: "limit", Msg: fmt.Sprintf("limit=%q: not a number", s)})
			return
		}
	}
	prefix := q.Get("prefix")
	if len(prefix) > n.cfg.MaxKeySize {
		n.writeErr(w, "list", &quorum.ParamError{Param: "prefix", Msg: fmt.Sprintf("prefix of %d bytes exceeds the key limit of %d", len(prefix), n.cfg.MaxKeySize)})
		return
	}
	res, err := n.Scan(r.Context(), ScanQuery{From: from, Prefix: []byte(prefix), Limit: limit, Timeout: p.Timeout})
	if err != nil {
		n.writeErr(w, "list", err)
		return
	}
	body := api.KeyList{Keys: make([]string, len(res.Keys))}
	for i, k := range res.Keys {
		body.Keys[i] = string(k)
	}
	if !res.Done {
		body.Next = res.Next.String()
	}
	writeJSON(w, http.StatusOK, body)
}

var (
	_ resp.Lister  = respBackend{}
	_ resp.Creator = respBackend{}
)

// Scan serves RESP SCAN (resp.Lister).
func (b respBackend) Scan(ctx context.Context, from listing.Cursor, prefix []byte, match func([]byte) bool, count int) (listing.Result, error) {
	return b.n.Scan(ctx, ScanQuery{From: from, Prefix: prefix, Match: match, Limit: count})
}

// Create serves RESP SET ... NX (resp.Creator).
func (b respBackend) Create(ctx context.Context, req quorum.PutRequest) (*quorum.WriteResult, bool, error) {
	res, err := b.n.createWrite(ctx, req)
	switch {
	case errors.Is(err, ErrExists):
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	b.n.metrics.observeWriteResult(res)
	b.n.noteWrite(req.Key, res)
	return res, true, nil
}
