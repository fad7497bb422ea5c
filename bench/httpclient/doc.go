// Package httpclient adapts the HTTP client (package client) to the bench's
// Client seam, so `quorumkv bench` drives a real cluster: Get and Put go to
// the node the benchmark chose as coordinator (client.Node, no failover), with
// the setting's N, R and W; the causal context of every answer is decoded
// (client.ParseContext) into a vclock.Vector for the consistency checker, and
// a write's dot (the X-Quorumkv-Dot header) into a bench.WriteID.
//
// It deliberately does not import package node (which pulls in badger):
// contexts are decoded without checking their signature, which is fine for
// reading what a reply saw and never used to forge a write.
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
