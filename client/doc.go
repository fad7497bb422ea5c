// Package client is a Go client for the quorumkv HTTP API: reads and writes
// with per-request N/R/W, sibling sets with their causal contexts,
// create-only writes (CreateOnly), key listings (Keys, Scan), and the
// cluster endpoints (/cluster/members, /cluster/ring, /status, /healthz).
//
// A Client holds the addresses of one or more nodes. Requests go to them in
// round robin, or to the node chosen with the Node option; any node can
// coordinate any key. A request that could not even connect (the node is
// down) is tried on the next address unless Node pinned it; a request that
// reached a node is never retried, because a retried blind write would
// become a second sibling.
//
// The client does not resolve siblings, cache values or keep contexts for
// the caller: it returns what the cluster answered and the opaque context to
// send back with the next write. It does not import the server packages.
//
// A Client is safe for concurrent use by many goroutines and keeps HTTP
// connections alive between requests: by default up to 256 idle ones per
// node, enough for that many requests in flight without reconnecting (see
// WithMaxIdleConnsPerHost).
//
//	c, err := client.New([]string{"127.0.0.1:8080", "127.0.0.1:8081"})
//	obj, err := c.Get(ctx, "user/42", client.R(1))
//	if errors.Is(err, client.ErrNotFound) { ... obj.Context is still set ... }
//	_, err = c.Put(ctx, "user/42", []byte("v2"), client.Context(obj.Context), client.W(3))
package client
