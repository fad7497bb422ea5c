package client

import (
	"context"
	"net/http"

	"github.com/quorumkv/quorumkv/api"
)

// Leave asks the answering node to leave the ring: its partitions move to
// the remaining members and it hands its records over before answering.
// For good on that node's data directory. Options: Node, Timeout.
func (c *Client) Leave(ctx context.Context, opts ...RequestOption) error {
	_, err := c.call(ctx, "leave", http.MethodPost, "/admin/leave", opInfo, opts, nil, MaxInfoBytes)
	return err
}

// RemoveMember asks the answering node to take member id, down for good,
// off the ring; the other members take over its partitions. A live member
// is refused (it must leave). Options: Node, Timeout.
func (c *Client) RemoveMember(ctx context.Context, id string, opts ...RequestOption) error {
	_, err := c.call(ctx, "remove "+id, http.MethodPost, "/admin/remove", opInfo, opts, map[string]string{"node": id}, MaxInfoBytes)
	return err
}

// Transfers returns the answering node's side of the ring change in
// course (/cluster/transfers). Options: Node, Timeout.
func (c *Client) Transfers(ctx context.Context, opts ...RequestOption) (*api.Transfers, error) {
	t, _, err := getJSON[api.Transfers](ctx, c, "/cluster/transfers", opInfo, opts)
	return t, err
}
