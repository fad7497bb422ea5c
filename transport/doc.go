// Package transport is quorumkv's node-to-node RPC: a caller sends an opaque
// body and a Method number to an address and waits for the reply body or a
// *RemoteError. Callers encode their own (msgpack) messages into bodies.
//
// TCP keeps Config.ConnsPerPeer persistent, authenticated connections per
// peer, each carrying many calls at once (replies are matched by request id);
// one writer goroutine per connection coalesces queued frames into one write.
// MemNetwork joins MemTransports in one process and drops, delays, duplicates,
// reorders and partitions messages on command, also inside testing/synctest.
// The package does not retry, route, encrypt or sign frames: callers retry,
// and the network is trusted once the handshake has proven the cluster secret.
//
// Concurrency: all methods of TCP, MemTransport and MemNetwork are safe for
// concurrent use; handlers run concurrently (see Handler).
//
// Wire format, a compatibility promise (enum values are append-only). A
// connection opens with three handshake messages, each a uint32 big-endian
// length and at most 1 KiB of payload; len(1) prefixes a string:
//
//	server hello   "QKV" version=1 (1) nonceS (32) maxFrame (u32)
//	client hello   "QKV" version=1 (1) nonceC (32) maxFrame (u32) len(1) id len(1) addr macC (32)
//	server answer  status (1: accepted, 2: rejected, 3: bad version); if accepted: len(1) id macS (32)
//
// macC = HMAC-SHA256(secret, "quorumkv/transport/v1 client" | server hello | client hello
// before macC); macS = HMAC-SHA256(secret, "quorumkv/transport/v1 server" | client hello |
// server hello | answer before macS). Then frames, both ways, integers big-endian:
//
//	length (u32, = 14 + len(body), <= MaxFrame)  kind (1)  method (1)  id (u64)  budget (u32)  body
//
// kind 1 request: budget is the ms left before the caller's deadline (0: none);
// 2 response: body is the reply; 3 error: body is code (u16) then message;
// 4 failure: body is a reason byte (1: reply too large). The caller's node
// picks request ids; replies carry the request's id.
//
// Example:
//
//	cfg := transport.DefaultConfig()
//	cfg.NodeID, cfg.ListenAddr, cfg.Secret, cfg.Handler = "n1", "127.0.0.1:7070", secret, h
//	t, err := transport.Listen(cfg)
//	reply, err := t.Call(ctx, "127.0.0.1:7071", methodGet, body)
package transport
