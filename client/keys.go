package client

import (
	"context"
	"net/http"
	"strconv"

	"github.com/quorumkv/quorumkv/api"
)

// KeyPage is one page of a key listing (GET /kv).
type KeyPage struct {
	// Keys come partition by partition (ring order) and in byte order
	// within each partition: not one alphabetical list.
	Keys []string
	// Next is the cursor of the next page; "" after the last page. A page
	// before the last may hold fewer keys than asked for, even none.
	Next string
	// Addr is the node that answered.
	Addr string
}

// Keys reads one page of the keys that start with prefix ("" for all),
// from cursor after ("" for the first page), at most limit keys (0: the
// node's default, 1000). A key live for the whole listing is listed at
// least once, and a key deleted before the first page is not (see the
// README). Cursors hold no server state: any node continues a listing,
// across restarts. Options: Timeout, Node, Param.
func (c *Client) Keys(ctx context.Context, prefix, after string, limit int, opts ...RequestOption) (*KeyPage, error) {
	if limit < 0 {
		return nil, badRequest("keys: limit %d", limit)
	}
	query := map[string]string{}
	if prefix != "" {
		query["prefix"] = prefix
	}
	if after != "" {
		query["after"] = after
	}
	if limit > 0 {
		query["limit"] = strconv.Itoa(limit)
	}
	body, res, err := callJSON[api.KeyList](ctx, c, "keys", http.MethodGet, "/kv", opList, opts, query)
	if err != nil {
		return nil, err
	}
	return &KeyPage{Keys: body.Keys, Next: body.Next, Addr: res.addr}, nil
}

// Scan calls fn for each key that starts with prefix, page after page,
// until fn returns false, the listing ends or a page fails. A failed page
// can be retried: Scan returns the cursor it was reading from ("" when the
// listing was complete or fn stopped it). Options: as Keys.
func (c *Client) Scan(ctx context.Context, prefix string, fn func(key string) bool, opts ...RequestOption) (cursor string, err error) {
	for {
		pg, err := c.Keys(ctx, prefix, cursor, 0, opts...)
		if err != nil {
			return cursor, err
		}
		for _, k := range pg.Keys {
			if !fn(k) {
				return "", nil
			}
		}
		if pg.Next == "" {
			return "", nil
		}
		cursor = pg.Next
	}
}
