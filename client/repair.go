package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// RepairReport is what a node's on-demand anti-entropy did (POST
// /admin/repair): exchanges of each partition it replicates (or the one
// asked) with each other primary. Raw keeps the whole answer, per-exchange
// details included.
type RepairReport struct {
	Node           string  `json:"node"`
	Partitions     int     `json:"partitions"`
	Exchanges      int     `json:"exchanges"`
	Failed         int     `json:"failed"`
	KeysCompared   int     `json:"keys_compared"`
	KeysDiffering  int     `json:"keys_differing"`
	RepairedLocal  int     `json:"repaired_local"`
	RepairedRemote int     `json:"repaired_remote"`
	BytesSent      int     `json:"bytes_sent"`
	BytesReceived  int     `json:"bytes_received"`
	DurationMS     float64 `json:"duration_ms"`
	Details        []struct {
		Partition      uint32    `json:"partition"`
		Peer           string    `json:"peer"`
		At             time.Time `json:"at"`
		KeysDiffering  int       `json:"keys_differing"`
		RepairedLocal  int       `json:"repaired_local"`
		RepairedRemote int       `json:"repaired_remote"`
		Error          string    `json:"error,omitempty"`
	} `json:"details"`

	Raw json.RawMessage `json:"-"`
}

// Repair asks the answering node to run anti-entropy now, synchronously,
// for partition p, or for every partition it replicates when p < 0. Options:
// Node, Timeout (a whole repair can take long: the client waits as long as
// the Timeout, else the Client's request timeout).
func (c *Client) Repair(ctx context.Context, p int, opts ...RequestOption) (*RepairReport, error) {
	req, err := newRequest(opInfo, opts)
	if err != nil {
		return nil, err
	}
	if p >= 0 {
		req.query.Set("partition", strconv.Itoa(p))
	}
	res, err := c.do(ctx, http.MethodPost, "/admin/repair", req, nil, MaxInfoBytes)
	if err != nil {
		return nil, fmt.Errorf("repair: %w", err)
	}
	if res.status != http.StatusOK {
		return nil, fmt.Errorf("repair: %w", errorOf(res))
	}
	var r RepairReport
	if err := json.Unmarshal(res.body, &r); err != nil {
		return nil, fmt.Errorf("repair: decode answer from %s: %w", res.addr, err)
	}
	r.Raw = json.RawMessage(res.body)
	return &r, nil
}
