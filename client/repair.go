package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/quorumkv/quorumkv/api"
)

// RepairReport is what a node's on-demand anti-entropy did (POST
// /admin/repair, api.RepairReport). Raw keeps the whole answer.
type RepairReport struct {
	api.RepairReport
	Raw json.RawMessage `json:"-"`
}

// Repair asks the answering node to run anti-entropy now, synchronously,
// for partition p, or for every partition it replicates when p < 0. Options:
// Node, Timeout (a whole repair can take long: the client waits as long as
// the Timeout, else the Client's request timeout).
func (c *Client) Repair(ctx context.Context, p int, opts ...RequestOption) (*RepairReport, error) {
	var query map[string]string
	if p >= 0 {
		query = map[string]string{"partition": strconv.Itoa(p)}
	}
	res, err := c.call(ctx, "repair", http.MethodPost, "/admin/repair", opInfo, opts, query, MaxInfoBytes)
	if err != nil {
		return nil, err
	}
	var r RepairReport
	if err := json.Unmarshal(res.body, &r); err != nil {
		return nil, fmt.Errorf("repair: decode answer from %s: %w", res.addr, err)
	}
	r.Raw = json.RawMessage(res.body)
	return &r, nil
}
