//go:build !unix

package connlimit

import "errors"

// FileLimit returns the process's soft limit on open file descriptors;
// unknown on this system.
func FileLimit() (uint64, error) {
	return 0, errors.New("connlimit: file descriptor limit unknown on this system")
}
