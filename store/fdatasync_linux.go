package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// walSyncSupported: see walSyncer.
const walSyncSupported = true

// fdatasync syncs f's data (and only the metadata needed to read it back:
// badger's logs are preallocated, so none).
func fdatasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
