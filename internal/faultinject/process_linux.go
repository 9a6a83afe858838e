package faultinject

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel SIGKILL the broker when the test process
// that started it dies (a test timeout panics without running cleanups),
// so no broker outlives its test on a shared machine.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
