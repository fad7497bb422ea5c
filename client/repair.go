package client

import (
	"context"
	"encoding/json"
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
	r, res, err := callJSON[RepairReport](ctx, c, "repair", http.MethodPost, "/admin/repair", opInfo, opts, query)
	if err != nil {
		return nil, err
	}
	r.Raw = json.RawMessage(res.body)
	return r, nil
}
