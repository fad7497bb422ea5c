// Package wire is the one msgpack codec of untrusted bytes in quorumkv, and
// the node-to-node protocol: every RPC method with its messages and caps is
// listed in methods.go.
//
// Reader decodes any msgpack value the protocol uses from bytes a peer, a
// disk or a client sent: it never panics, never allocates on success, checks
// every claimed length against the bytes left and the caller's cap before
// the caller can size anything by it, and keeps its first error (sticky), so
// a decoder reads field after field and checks once. The Append functions
// encode without reflection into the caller's buffer. Package vclock (sets,
// contexts, dots), package antientropy (tree messages and snapshots) and the
// messages here (replica path and anti-entropy repair) all read and write
// through them; the msgpack library remains only in tests, where it checks
// that what we write is plain msgpack that it reads the same way.
//
// The package does no I/O, keeps no state and starts no goroutines. It knows
// nothing of the transport: a method number is a transport.Method, an error
// code a transport.RemoteError.Code.
//
// Compatibility: the bytes of every message are pinned by golden tests
// (testdata/messages.golden, captured from the encoders this package
// replaced). Method numbers, error codes and error kinds are append-only.
//
// Example, a merge request and back:
//
//	body, _ := (&wire.MergeRequest{Partition: p, Hash: h, Key: k, Set: set}).Append(buf[:0])
//	var m wire.MergeRequest
//	if err := m.Decode(body); err != nil { /* errors.Is(err, wire.ErrMalformed) */ }
package wire
