//go:build !linux

package main

import "os/exec"

// setDevProcAttr does nothing outside Linux: agents share dev's process
// group, so a terminal's Ctrl-C reaches them too.
func setDevProcAttr(cmd *exec.Cmd) {}
