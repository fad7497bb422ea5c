// Package backup copies a cluster's data to a file and merges it back into
// any cluster: the file format (format.go), the two drivers (backup.go,
// restore.go) and what the node's endpoints do with streams (serve.go).
//
// A backup holds every key with its whole dotted version vector set, as the
// replicas store it (vclock's encoding): every sibling, tombstones included,
// and the causal context. Restoring is therefore a replica merge (vclock.Sync)
// at each of the key's replicas in the target cluster, the merge hinted
// handoff and anti-entropy use: it never drops a sibling, never overwrites a
// newer write (a set the target has moved past is covered by its context)
// and restoring twice changes nothing. The target may have any size and any
// ring: keys are placed by the target's own ring when they are merged.
//
// The file is a header (magic, format version, metadata) followed by chunks,
// each with its own CRC-32C, and an end chunk with the totals, so a
// truncated file, a corrupted chunk or a newer format is refused with an
// error that says which. Every length is checked against a cap before
// anything is allocated (Reader is fuzzed). The node streams its records
// in the same format (GET /admin/backup/records), so one codec serves both.
//
// The drivers reach the cluster only through the Source and Sink
// interfaces (package client implements them over the HTTP API); serve.go
// holds the node endpoints' side (WriteStream, ReadBatch, Replicate). The
// package does no network I/O of its own. Backup, Restore and Replicate
// run goroutines that end before they return.
//
//	w, _ := backup.NewWriter(f, backup.Meta{Created: time.Now()})
//	_ = w.Add(backup.Record{Key: k, Set: set})
//	_ = w.Close()
package backup
