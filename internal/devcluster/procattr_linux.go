package devcluster

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts an agent in its own process group, so a terminal's Ctrl-C
// reaches only the caller (which then stops each agent with one SIGTERM; a
// second signal straight from the terminal would make an agent skip its
// clean shutdown), and asks the kernel to send it SIGTERM if the caller dies
// without stopping it.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
