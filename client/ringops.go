package client

import (
	"context"
	"fmt"
	"net/http"
)

// Leave asks the answering node to leave the ring: its partitions move to
// the remaining members and it hands its records over before answering.
// For good on that node's data directory. Options: Node, Timeout.
func (c *Client) Leave(ctx context.Context, opts ...RequestOption) error {
	req, err := newRequest(opInfo, opts)
	if err != nil {
		return err
	}
	res, err := c.do(ctx, http.MethodPost, "/admin/leave", req, nil, MaxInfoBytes)
	if err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	if res.status != http.StatusOK {
		return fmt.Errorf("leave: %w", errorOf(res))
	}
	return nil
}

// RemoveMember asks the answering node to take member id, down for good,
// off the ring; the other members take over its partitions. A live member
// is refused (it must leave). Options: Node, Timeout.
func (c *Client) RemoveMember(ctx context.Context, id string, opts ...RequestOption) error {
	req, err := newRequest(opInfo, opts)
	if err != nil {
		return err
	}
	req.query.Set("node", id)
	res, err := c.do(ctx, http.MethodPost, "/admin/remove", req, nil, MaxInfoBytes)
	if err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	if res.status != http.StatusOK {
		return fmt.Errorf("remove %s: %w", id, errorOf(res))
	}
	return nil
}
