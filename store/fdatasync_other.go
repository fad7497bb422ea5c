//go:build !linux

package store

import "os"

// walSyncSupported: elsewhere the store syncs with DB.Sync only, not
// trusting that another descriptor's sync covers badger's mapped pages.
const walSyncSupported = false

// fdatasync falls back to fsync where fdatasync is not available.
func fdatasync(f *os.File) error { return f.Sync() }
