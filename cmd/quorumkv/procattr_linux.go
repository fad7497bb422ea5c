package main

import (
	"os/exec"
	"syscall"
)

// setDevProcAttr puts a dev agent in its own process group, so a terminal's
// Ctrl-C reaches only dev (which then stops each agent with one SIGTERM; a
// second signal straight from the terminal would make an agent skip its
// clean shutdown), and asks the kernel to send it SIGTERM if dev dies
// without stopping it.
func setDevProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
