// Package httpclient adapts the HTTP client (package client) to the bench's
// Client seam, so `quorumkv bench` drives a real cluster: Get and Put go to
// the node the benchmark chose as coordinator (client.Node, no failover), with
// the setting's N, R and W. Reads and writes (with returnbody) hand the bench
// the live values the node answered with; the consistency oracle reads the
// write id at the start of each value. Causal contexts stay opaque tokens,
// passed back to the store and never decoded: the bench does not trust the
// store's own vectors to judge what a write superseded.
//
// It deliberately does not import package node (which pulls in badger).
//
// ErrorKind labels failures for the report: quorum, unavailable, timeout,
// bad_request, canceled, bad_answer or other.
//
// Concurrency: a Client is safe for concurrent use, as the wrapped
// *client.Client is.
//
//	hc, _ := client.New(addrs, client.WithMaxIdleConnsPerHost(64))
//	rep, err := bench.Sweep(ctx, httpclient.New(hc), cfg, quorums)
package httpclient
