//go:build unix

package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// consoleReadable reports whether dev may read commands from f without
// being stopped: a pipe or a file always, a terminal only while dev's
// process group is in its foreground (a read from the background would
// stop dev with SIGTTIN, e.g. after `quorumkv dev &`).
func consoleReadable(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	if fi.Mode()&os.ModeCharDevice == 0 {
		return true
	}
	fg, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGPGRP)
	if err != nil {
		return false // a character device that is not a terminal, e.g. /dev/null
	}
	return fg == unix.Getpgrp()
}
