//go:build unix

package connlimit

import "syscall"

// FileLimit returns the process's soft limit on open file descriptors.
func FileLimit() (uint64, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, err
	}
	return uint64(r.Cur), nil
}
