// Package transport is quorumkv's node-to-node RPC: a caller sends an opaque
// body and a Method number to an address and waits for the reply body or a
// *RemoteError. Callers encode their own (msgpack) messages into bodies.
//
// TCP keeps Config.ConnsPerPeer persistent, authenticated connections per
// peer, each carrying many calls at once (replies are matched by request id);
// a call takes the first connection not busy with a large frame or a full
// queue, so small calls share one; one writer goroutine per connection
// coalesces queued frames into one write.
// MemNetwork joins MemTransports in one process and drops, delays, duplicates,
// reorders and partitions messages on command, also inside testing/synctest.
// The package does not retry or route: callers retry.
//
// Concurrency: all methods of TCP, MemTransport and MemNetwork are safe for
// concurrent use; handlers run concurrently (see Handler).
//
// # Security and threat model
//
// With Config.Secret set, a connection speaks protocol version 2: both
// sides prove the secret with HMAC-SHA256 over both fresh nonces and both
// ephemeral X25519 key shares, derive one AES-256-GCM key per direction
// with HKDF-SHA256 from the X25519 result, the secret and the handshake
// transcript, and from then on every byte travels in authenticated,
// encrypted records with sequence-number nonces.
//
//   - A passive sniffer sees who connects to whom, the node ids and
//     advertised addresses in the hellos, the version, and the sizes and
//     timing of records; not one byte of any frame (methods, request ids,
//     bodies, errors). A recorded handshake lets it test guesses of the
//     secret offline, one HMAC per guess, which is what any keyed MAC
//     reveals: use a random secret of 16 bytes or more. Recorded traffic
//     stays unreadable even if the secret leaks later (the keys also need
//     an ephemeral private key that was never sent).
//   - An active attacker in the middle without the secret cannot complete
//     a handshake as either side (a replayed one fails: the nonces are
//     fresh), nor inject, alter, replay, reorder or drop a record without
//     the receiver noticing: the connection is closed, its pending calls
//     fail with ErrConnLost (the handler ran at most once; a replay never
//     runs it again), and the next call dials afresh. It cannot downgrade
//     a connection between two nodes of this release to version 1: a node
//     with a secret speaks it only with Config.AcceptV1Peers and only to a
//     peer that speaks nothing newer (see "Rolling upgrades"), and both
//     proofs cover the hellos. It can still cut, delay or flood
//     connections (see the limits below).
//   - A member with the secret (or whoever learns it) is a full peer: it can
//     call any method, claim any node id (the secret proves membership of
//     the cluster, not which member is speaking: the id passed to handlers
//     is the one the peer sent), and, if it sits in the middle, run both
//     handshakes and read and rewrite that traffic. It cannot read
//     connections it only records (ephemeral keys). The limits below bound
//     what it costs a node, not what it may ask.
//
// Without a secret a connection speaks version 1: any process that reaches
// the port is a peer and frames travel in the clear. Whether that is
// acceptable (loopback only, say) is the caller's decision.
//
// # Rolling upgrades
//
// The release before encryption speaks only version 1 and refuses any
// server hello of another version, so without help a cluster with a
// secret could not be upgraded node by node. Config.AcceptV1Peers is that
// help, for the upgrade window only:
//
//   - An accepting server announces version 1 in its hello, with the last
//     8 bytes of its nonce set to a fixed mark ("also speaks version 2").
//     The old release ignores the mark and answers in version 1; a client
//     of this release sees it and answers in version 2 as always.
//   - A client of this release that reads an unmarked version 1 hello is
//     facing the old release (or a node without a secret). With
//     AcceptV1Peers it answers in version 1, its own nonce marked; without
//     it, it offers version 2, which the old release cannot parse, and
//     reports a *VersionError naming both versions and the setting.
//   - A version 1 session needs both version 1 proofs of the secret, over
//     both hellos as each side saw them. An accepting server refuses
//     version 1 from a client whose nonce is marked.
//
// Why no attacker can downgrade two nodes of this release: to make the
// client fall back, it would have to show it an unmarked version 1 hello;
// a node of this release with a secret never sends one, and a changed
// hello makes the server's check of the client's proof fail and leaves the
// attacker unable to forge the server's proof. The server, for its part,
// never accepts version 1 from a marked client. The old release draws the
// mark by chance with probability 2^-64 per handshake, which costs one
// connection.
//
// While a version 1 connection is open the transport logs a warning when
// it opens and every LegacyReminder, and LegacyPeers lists its peers; the
// cost of the window is what the old release always had: frames between
// an old and a new node travel in the clear.
//
// # Limits under hostile load
//
// Frames are at most MaxFrame; a body is read into a buffer that grows as
// its bytes arrive (from 64 KiB, at most doubling), never at the length the
// sender claims. The bytes of incoming requests held from their header
// until their handler returns, and of the replies queued until written,
// are bounded per connection (MaxConnInflightBytes) and per transport
// (MaxInflightBytes): a request beyond them is not read until bytes are
// returned, which pushes back on the sender through TCP. With
// Config.Budget the same bytes are charged to the node's memory budget,
// shared with its client fronts; a request that finds no room there within
// the budget's wait is skipped unread and answered with a failure frame
// (reason 2, busy: the caller gets ErrBusy). The bound is on
// the length claimed, held until the body has arrived or IOTimeout ends
// the connection; so a peer past the handshake that claims large frames
// and stalls delays others' requests for at most IOTimeout per frame, and
// never costs memory. A version 2 connection buffers at most one record
// (32 KiB) before opening it. Connections in the handshake are bounded
// (MaxHandshakes, MaxHandshakesPerSource per source IP, HandshakeTimeout);
// a newcomer evicts the oldest one that has not yet sent its hello, which
// keeps 100 ms to send it, so a flood of silent connections cannot keep a
// real peer out. Log lines an attacker can provoke (refused handshakes,
// evictions, bad frames) are limited to one per kind and source every 10 s,
// each saying how many were held back ("repeats").
//
// # Wire format
//
// A compatibility promise: enum values are append-only, and the server
// hello keeps its layout in every version, so that any release can read
// and name its peer's version. A connection opens with three handshake
// messages, each a uint32 big-endian length and at most 1 KiB of payload;
// len(1) prefixes a string:
//
//	server hello   "QKV" version (1) nonceS (32) maxFrame (u32)
//	client hello   "QKV" version (1) nonceC (32) maxFrame (u32) len(1) id len(1) addr [shareC (32)] macC (32)
//	server answer  status (1: accepted, 2: rejected, 3: bad version); if accepted: len(1) id [shareS (32)] macS (32)
//
// The server announces the version it requires (2 with a secret, 1
// without, 1 with the mark in the upgrade window); the client offers its
// own (the same rule, or 1 to an unmarked version 1 server in the upgrade
// window); a side that cannot speak the other's answers "bad version" or
// hangs up, and the dialer gets a *VersionError naming both. Key shares
// are present in version 2 only.
// macC = HMAC-SHA256(secret, "quorumkv/transport/vN client" | server hello
// | client hello before macC); macS = HMAC-SHA256(secret,
// "quorumkv/transport/vN server" | client hello | server hello | answer
// before macS), N the version. In version 2, keys = HKDF-SHA256(secret =
// X25519(shares) | cluster secret, salt = SHA-256 over the three messages,
// each with its u32 length, info = "quorumkv/transport/v2 keys", 64 bytes):
// the first 32 seal client to server, the rest server to client.
//
// Then frames, both ways, integers big-endian:
//
//	length (u32, = 14 + len(body), <= MaxFrame)  kind (1)  method (1)  id (u64)  budget (u32)  body
//
// kind 1 request: budget is the ms left before the caller's deadline (0: none);
// 2 response: body is the reply; 3 error: body is code (u16) then message;
// 4 failure: body is a reason byte (1: reply too large; 2: busy, the request
// was skipped unread for want of room in the node's memory budget). The caller's node
// picks request ids; replies carry the request's id.
//
// Version 1 sends the frames as they are. Version 2 sends records, each
// length (u32, of the ciphertext with its 16-byte tag, 17 to 32 KiB + 16)
// then AES-256-GCM(key, nonce = 4 zero bytes | sequence number (u64, from
// 0 per direction), plaintext = the next up to 32 KiB of the frame stream,
// additional data = the length). Frames may span records; a record usually
// holds a batch of frames (one per coalesced write).
//
// Example:
//
//	cfg := transport.DefaultConfig()
//	cfg.NodeID, cfg.ListenAddr, cfg.Secret, cfg.Handler = "n1", "127.0.0.1:7070", secret, h
//	t, err := transport.Listen(cfg)
//	reply, err := t.Call(ctx, "127.0.0.1:7071", methodGet, body)
package transport
