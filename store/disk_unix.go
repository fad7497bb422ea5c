//go:build linux || darwin || freebsd

package store

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// statfs returns the bytes available to this process (f_bavail: what an
// unprivileged writer can use) and the size of dir's file system.
func statfs(dir string) (avail, total uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), uint64(st.Blocks) * uint64(st.Bsize), nil
}

// walFiles reports the disk blocks held by badger's write-ahead logs
// (*.mem) in dir and whether there are any. A clean Close flushes and
// deletes them all, so any left means the last run did not close cleanly
// and badger must replay them, which it cannot do read-only.
func walFiles(dir string) (bytes uint64, any bool, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, false, err
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".mem") {
			continue
		}
		any = true
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(dir, e.Name()), &st); err == nil {
			bytes += uint64(st.Blocks) * 512
		}
	}
	return bytes, any, nil
}
