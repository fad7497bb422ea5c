//go:build !linux

package devcluster

import "os/exec"

// setProcAttr does nothing outside Linux: agents share the caller's process
// group, so a terminal's Ctrl-C reaches them too.
func setProcAttr(cmd *exec.Cmd) {}
