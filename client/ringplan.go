package client

import (
	"context"
	"net/http"

	"github.com/quorumkv/quorumkv/api"
)

// RingPlan is the staged ring changes and what applying them moves
// (api.RingPlan).
type RingPlan = api.RingPlan

// RingBalance is a placement's balance and zone spread in a RingPlan.
type RingBalance = api.RingBalance

// StagedJoin is a member waiting in a RingPlan to join.
type StagedJoin = api.StagedJoin

// MemberLoad is one member's partitions in a RingBalance.
type MemberLoad = api.MemberLoad

// RingPlan returns the answering node's plan of the staged ring changes
// (GET /admin/ring/plan). Options: Node, Timeout.
func (c *Client) RingPlan(ctx context.Context, opts ...RequestOption) (*RingPlan, error) {
	p, _, err := getJSON[RingPlan](ctx, c, "/admin/ring/plan", opInfo, opts)
	return p, err
}

// StageRing stages op ("join", "leave" or "remove") of member id: it waits
// in the plan until CommitRing. It returns the new plan. Options: Node,
// Timeout.
func (c *Client) StageRing(ctx context.Context, op, id string, opts ...RequestOption) (*RingPlan, error) {
	return c.postRingPlan(ctx, op+" "+id, "/admin/ring/stage", opts, map[string]string{"op": op, "node": id})
}

// CommitRing applies the staged ring changes at once and returns the plan
// of what it committed. Options: Node, Timeout.
func (c *Client) CommitRing(ctx context.Context, opts ...RequestOption) (*RingPlan, error) {
	return c.postRingPlan(ctx, "ring commit", "/admin/ring/commit", opts, nil)
}

// ClearRing drops the staged ring changes and returns the plan of what it
// dropped. Options: Node, Timeout.
func (c *Client) ClearRing(ctx context.Context, opts ...RequestOption) (*RingPlan, error) {
	return c.postRingPlan(ctx, "ring clear", "/admin/ring/clear", opts, nil)
}

func (c *Client) postRingPlan(ctx context.Context, what, path string, opts []RequestOption, query map[string]string) (*RingPlan, error) {
	p, _, err := callJSON[RingPlan](ctx, c, what, http.MethodPost, path, opInfo, opts, query)
	return p, err
}
