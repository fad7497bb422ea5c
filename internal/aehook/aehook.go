// Package aehook carries package antientropy's test-only operations to
// node's tests (node/export_test.go), so that they are not on
// *antientropy.Driver's exported surface, as node/internal/nodehook does
// for node. Package antientropy sets the hooks when it is initialised; d is
// always an *antientropy.Driver.
package aehook

import "context"

var (
	// Reap runs one pass of d's tombstone reaper now (it also runs every
	// TombstoneGrace/8) and returns its antientropy.ReapStatus.
	Reap func(ctx context.Context, d any) (any, error)
	// OnExchange makes d call f at the start (true) and end (false) of
	// every exchange it runs; f must not block.
	OnExchange func(d any, f func(start bool))
)
