package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/quorumkv/quorumkv/api"
)

// Object is a key's sibling set as a read returned it.
type Object struct {
	// Found is false when no sibling is live (the key was never written or
	// every sibling is a tombstone).
	Found bool
	// Siblings are the concurrent values, in the node's order. With one
	// live value there is exactly one; with several, tombstones that are
	// concurrent with live values are included, marked Deleted.
	Siblings []Sibling
	// Context is the opaque causal context: send it back (option Context)
	// with the next write to supersede everything this read saw. It is set
	// for a missing key too when the key holds tombstones.
	Context string
	// Acks counts the replicas that answered in time (zero for Local).
	Acks Acks
	// Addr is the node that answered.
	Addr string
	// Warnings are the node's warnings about the answer, in words (the
	// X-Quorumkv-Warning headers): durability reduced on a ring smaller
	// than the default N.
	Warnings []string
}

// Live returns the siblings that are not tombstones.
func (o *Object) Live() []Sibling {
	var out []Sibling
	for _, s := range o.Siblings {
		if !s.Deleted {
			out = append(out, s)
		}
	}
	return out
}

// Sibling is one value of a key.
type Sibling struct {
	Value       []byte
	ContentType string
	// Timestamp is the coordinator's wall clock at the write, for display
	// only (never used to order writes). It has second resolution when the
	// read returned a single value (from Last-Modified).
	Timestamp time.Time
	Deleted   bool
	// Dot is the write's opaque id (base64): the node, its incarnation and
	// the node's counter.
	Dot string
}

// Acks counts replica answers counted toward a quorum.
type Acks struct {
	Primary  int // from the key's primaries
	Fallback int // from fallbacks standing in for primaries (sloppy quorum)
	Durable  int // writes made durable (fsync) on the replica
}

// Total is Primary + Fallback.
func (a Acks) Total() int { return a.Primary + a.Fallback }

// WriteResult is an acknowledged Put or Delete.
type WriteResult struct {
	// Context is the key's causal context after the write: send it with
	// the next write to supersede this one.
	Context string
	// Dot is the id the coordinator minted for this write.
	Dot string
	// Siblings is how many siblings the key held on the coordinator after
	// the write (tombstones included); more than one means concurrent
	// writes are waiting to be resolved.
	Siblings int
	// Acks counts the replicas that acknowledged before the answer.
	Acks Acks
	// Coordinator is the id of the node that minted the dot.
	Coordinator string
	// Object is the key's sibling set after the write, with ReturnBody.
	Object *Object
	// Addr is the node that answered.
	Addr string
	// Warnings are the node's warnings about the answer, in words (the
	// X-Quorumkv-Warning headers): the key now holds siblings, at or over
	// the node's warning threshold; durability reduced on a small ring.
	Warnings []string
}

// kvPath is key's path. PathEscape leaves "." and ".." as they are, and
// anything on the way that cleans paths (a proxy, a client library) would
// turn /kv/.. into /; escaping their dots keeps them keys.
func kvPath(key string) string {
	switch key {
	case ".":
		return "/kv/%2E"
	case "..":
		return "/kv/%2E%2E"
	}
	return "/kv/" + url.PathEscape(key)
}

func checkKey(op, key string) error {
	if key == "" {
		return badRequest("%s: empty key", op)
	}
	return nil
}

// Get reads key. On a missing key it returns an error matching ErrNotFound
// together with a non-nil Object (Found false, Context set): write with
// that context to supersede tombstones. Options: N, R, PR, Timeout, Local,
// Node, Param.
func (c *Client) Get(ctx context.Context, key string, opts ...RequestOption) (*Object, error) {
	if err := checkKey("get", key); err != nil {
		return nil, err
	}
	req, err := newRequest(opGet, opts)
	if err != nil {
		return nil, fmt.Errorf("get %q: %w", key, err)
	}
	res, err := c.do(ctx, http.MethodGet, kvPath(key), req, nil, MaxValueBytes)
	if err != nil {
		return nil, fmt.Errorf("get %q: %w", key, err)
	}
	obj, err := decodeObject(res)
	if err != nil {
		return obj, fmt.Errorf("get %q: %w", key, err)
	}
	return obj, nil
}

// decodeObject reads a set answer: 200 (one value, raw), 300 (siblings as
// JSON) or 404 (none live; still an Object, with the error).
func decodeObject(res *response) (*Object, error) {
	h := res.header
	obj := &Object{Context: h.Get(api.HeaderContext), Acks: acksOf(h), Addr: res.addr, Warnings: h.Values(api.HeaderWarning)}
	switch res.status {
	case http.StatusOK:
		obj.Found = true
		s := Sibling{Value: res.body, ContentType: h.Get("Content-Type"), Dot: h.Get(api.HeaderDot)}
		if t, err := http.ParseTime(h.Get("Last-Modified")); err == nil {
			s.Timestamp = t
		}
		obj.Siblings = []Sibling{s}
		return obj, nil
	case http.StatusMultipleChoices:
		var body api.Siblings
		if err := json.Unmarshal(res.body, &body); err != nil {
			return nil, fmt.Errorf("decode siblings from %s: %w", res.addr, err)
		}
		if body.Context != "" {
			obj.Context = body.Context
		}
		obj.Siblings = make([]Sibling, 0, len(body.Siblings))
		for i, s := range body.Siblings {
			v, err := base64.StdEncoding.DecodeString(s.Value)
			if err != nil {
				return nil, fmt.Errorf("decode sibling %d from %s: %w", i, res.addr, err)
			}
			obj.Siblings = append(obj.Siblings, Sibling{Value: v, ContentType: s.ContentType,
				Timestamp: s.Timestamp, Deleted: s.Deleted, Dot: s.Dot})
			obj.Found = obj.Found || !s.Deleted
		}
		return obj, nil
	case http.StatusNotFound:
		e := errorOf(res)
		if e.Code == codeNotFound {
			return obj, e
		}
		return nil, e
	}
	if res.status >= 400 {
		return nil, errorOf(res)
	}
	return nil, fmt.Errorf("unexpected status %d from %s", res.status, res.addr)
}

func acksOf(h http.Header) Acks {
	n := func(k string) int {
		v, _ := strconv.Atoi(h.Get(k))
		return v
	}
	return Acks{Primary: n(api.HeaderAcksPrimary), Fallback: n(api.HeaderAcksFallback), Durable: n(api.HeaderAcksDurable)}
}

// Put writes value under key. Without the Context option the write is
// concurrent with whatever the key holds and becomes a sibling of it; with
// Overwrite it supersedes what a read at R sees. Options: N, R and PR (with
// Overwrite), W, PW, DW, Timeout, Context, Overwrite, ContentType,
// ReturnBody, Node, Param.
func (c *Client) Put(ctx context.Context, key string, value []byte, opts ...RequestOption) (*WriteResult, error) {
	if err := checkKey("put", key); err != nil {
		return nil, err
	}
	req, err := newRequest(opPut, opts)
	if err == nil && req.readParams() && req.query.Get("overwrite") != "true" && !req.createOnly {
		err = badRequest("options R and PR apply to a put only with Overwrite or CreateOnly (the read it makes first)")
	}
	if err != nil {
		return nil, fmt.Errorf("put %q: %w", key, err)
	}
	if value == nil {
		value = []byte{}
	}
	wr, err := c.write(ctx, http.MethodPut, key, req, value)
	if err != nil {
		return nil, fmt.Errorf("put %q: %w", key, err)
	}
	return wr, nil
}

// Delete writes a tombstone for key, superseding what the Context option
// covers. Without Context, the node deletes what a read at R sees, and
// answers ErrNotFound when that read found no live value (nothing is
// written then). Options: N, R and PR (without Context), W, PW, DW,
// Timeout, Context, Node, Param.
func (c *Client) Delete(ctx context.Context, key string, opts ...RequestOption) (*WriteResult, error) {
	if err := checkKey("delete", key); err != nil {
		return nil, err
	}
	req, err := newRequest(opDelete, opts)
	if err == nil && req.readParams() && req.context != nil {
		err = badRequest("options R and PR apply to a delete only without Context (the read it makes first)")
	}
	if err != nil {
		return nil, fmt.Errorf("delete %q: %w", key, err)
	}
	wr, err := c.write(ctx, http.MethodDelete, key, req, nil)
	if err != nil {
		return nil, fmt.Errorf("delete %q: %w", key, err)
	}
	return wr, nil
}

func (c *Client) write(ctx context.Context, method, key string, req *request, body []byte) (*WriteResult, error) {
	res, err := c.do(ctx, method, kvPath(key), req, body, MaxValueBytes)
	if err != nil {
		return nil, err
	}
	h := res.header
	wr := &WriteResult{Context: h.Get(api.HeaderContext), Dot: h.Get(api.HeaderDot), Acks: acksOf(h),
		Coordinator: h.Get(api.HeaderCoordinator), Addr: res.addr, Warnings: h.Values(api.HeaderWarning)}
	wr.Siblings, _ = strconv.Atoi(h.Get(api.HeaderSiblings))
	switch {
	case res.status == http.StatusNoContent:
		return wr, nil
	case req.returnBody && (res.status == http.StatusOK || res.status == http.StatusMultipleChoices ||
		res.status == http.StatusNotFound && res.header.Get(api.HeaderDot) != ""):
		// With returnbody the node answers with the set; a 404 means every
		// sibling is a tombstone, yet the write itself was acknowledged.
		obj, err := decodeObject(res)
		if obj == nil {
			return nil, err
		}
		wr.Object = obj
		if obj.Context != "" {
			wr.Context = obj.Context
		}
		return wr, nil
	case res.status >= 400:
		return nil, errorOf(res)
	}
	return nil, fmt.Errorf("unexpected status %d from %s", res.status, res.addr)
}
