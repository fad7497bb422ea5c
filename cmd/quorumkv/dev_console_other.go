//go:build !unix

package main

import "os"

// consoleReadable reports whether dev may read commands from f; outside
// Unix there is no background-read stop to avoid.
func consoleReadable(f *os.File) bool { return f != nil }
