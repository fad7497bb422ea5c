// Package storetest holds the conformance suite for package store and
// helpers that open small stores in tests of other packages.
//
// Run the suite against every way of opening a store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.InMemory)
//		storetest.Run(t, storetest.OnDisk)
//	}
//
// It does no I/O beyond badger's own, in t.TempDir directories.
package storetest
