package client

import (
	"context"
	"encoding/json"
	"github.com/quorumkv/quorumkv/api"
	"net/http"
)

// Member is one cluster member as a node sees it.
type Member = api.Member

// Members lists every member the answering node knows, sorted by id.
// Options: Node, Timeout.
func (c *Client) Members(ctx context.Context, opts ...RequestOption) ([]Member, error) {
	body, _, err := getJSON[api.Members](ctx, c, "/cluster/members", opInfo, opts)
	if err != nil {
		return nil, err
	}
	return body.Members, nil
}

// Ring is the partition ownership a node computes from its ring state.
type Ring = api.Ring

// Partition is one partition's primaries, in preference order.
type Partition = api.Partition

// Ring returns the answering node's ring. Options: N (primaries per
// partition), Node, Timeout.
func (c *Client) Ring(ctx context.Context, opts ...RequestOption) (*Ring, error) {
	r, _, err := getJSON[Ring](ctx, c, "/cluster/ring", opRing, opts)
	return r, err
}

// Status is a node's /status answer (api.Status). Raw keeps the whole
// answer, fields this package does not know included.
type Status struct {
	api.Status
	Raw json.RawMessage `json:"-"`
}

// Status returns the answering node's status. Options: Node, Timeout.
func (c *Client) Status(ctx context.Context, opts ...RequestOption) (*Status, error) {
	s, res, err := getJSON[Status](ctx, c, "/status", opInfo, opts)
	if err != nil {
		return nil, err
	}
	s.Raw = json.RawMessage(res.body)
	return s, nil
}

// Health returns nil when the node answers /healthz with 200, and an error
// matching ErrUnavailable when it is shutting down. Options: Node, Timeout.
func (c *Client) Health(ctx context.Context, opts ...RequestOption) error {
	_, err := c.call(ctx, "health", http.MethodGet, "/healthz", opInfo, opts, nil, maxErrorBytes)
	return err
}
