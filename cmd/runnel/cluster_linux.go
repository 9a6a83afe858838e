package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel SIGTERM a cluster's broker if the cluster
// command dies without stopping it (killed, say), so no broker outlives
// it.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
