package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill the child if this process dies
// first, so that no application process outlives a killed benchmark.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
