package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/quorumkv/quorumkv/httpapi"
	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/listing"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/ring"
)

// Listing keys (HTTP GET /kv, RESP SCAN) is package listing's; this file
// serves its replica pages (wire.MethodListOrdered), runs its scans, and gives
// both fronts (frontBackend) listings and create-only writes.

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
)

// ScanQuery is one page of a scan: see listing.Query.
type ScanQuery struct {
	From   listing.Cursor
	Prefix []byte
	Match  func(key []byte) bool
	Limit  int
}

// Scan reads one page of keys across the cluster (package listing), each
// partition from N-W+1 of its primaries under the node's default N and W
// (fitted to the ring), within ctx's deadline, else the default timeout.
func (n *Node) Scan(ctx context.Context, q ScanQuery) (listing.Result, error) {
	if q.Limit < 1 || q.Limit > httpapi.MaxListLimit {
		return listing.Result{}, &quorum.ParamError{Param: "limit", Msg: fmt.Sprintf("limit=%d: want 1 to %d", q.Limit, httpapi.MaxListLimit)}
	}
	p, _, err := n.fit(quorum.Params{})
	if err != nil {
		return listing.Result{}, err
	}
	p = p.WithDefaults(n.cfg.Defaults)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.Defaults.Timeout)
		defer cancel()
	}
	return listing.Scan(ctx, listSource{n}, n.Ring(), listing.Query{
		From: q.From, Prefix: q.Prefix, Match: q.Match, Limit: q.Limit,
		N: p.N, W: min(p.W, p.N), MaxPartitions: scanMaxPartitions, ScanFactor: scanFactor,
		Now: n.now().UnixNano(), ReadEntries: listing.DefaultReadEntries, Pace: listing.DefaultPace,
	})
}

// listSource reads replica pages: this node's directly, others' by RPC.
type listSource struct{ n *Node }

func (s listSource) List(ctx context.Context, id ring.NodeID, req listing.Request) (listing.Page, error) {
	var resp wire.ListResponse
	if string(id) == s.n.cfg.NodeID {
		var err error
		if resp, err = s.n.listPage(req); err != nil {
			return listing.Page{}, err
		}
	} else if err := (replicas{s.n}).call(ctx, id, wire.MethodListOrdered, &req, &resp); err != nil {
		return listing.Page{}, err
	}
	return listing.PageOf(id, resp)
}

// serveList answers wire.MethodListOrdered.
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

// listPage answers a page request for this node's records (see
// listing.ReplicaPage), once the position is checked.
func (n *Node) listPage(req wire.ListRequest) (wire.ListResponse, error) {
	rg := n.Ring()
	if int(req.Partition) >= rg.Partitions() || rg.PartitionOfHash(req.From) != req.Partition {
		return wire.ListResponse{}, invalid("list: partition %d, from %x: not a position of the partition", req.Partition, req.From)
	}
	return listing.ReplicaPage(rg, n.rep.Scan, n.rep.ScanKeys, req)
}

var (
	_ httpapi.Lister  = frontBackend{}
	_ httpapi.Creator = frontBackend{}
)

// Scan serves GET /kv and RESP SCAN (httpapi.Lister).
func (b frontBackend) Scan(ctx context.Context, from listing.Cursor, prefix []byte, match func([]byte) bool, count int) (listing.Result, error) {
	return b.n.Scan(ctx, ScanQuery{From: from, Prefix: prefix, Match: match, Limit: count})
}

// Create serves If-None-Match: * and RESP SET ... NX (httpapi.Creator).
func (b frontBackend) Create(ctx context.Context, req quorum.PutRequest) (*quorum.WriteResult, []string, bool, error) {
	res, err := b.n.createWrite(ctx, req)
	switch {
	case errors.Is(err, errExists):
		return nil, nil, false, nil
	case err != nil:
		return nil, nil, false, err
	}
	b.n.metrics.observeWriteResult(res)
	return res, b.n.noteWrite(req.Key, res), true, nil
}
