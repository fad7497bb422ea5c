//go:build !(linux || darwin || freebsd)

package store

// statfs is not implemented here: the disk guard turns itself off (with a
// warning) at Open.
func statfs(string) (avail, total uint64, err error) { return 0, 0, errNoGuard }

func walFiles(string) (uint64, bool, error) { return 0, false, errNoGuard }
