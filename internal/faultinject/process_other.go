//go:build !linux

package faultinject

import "os/exec"

// dieWithParent does nothing where the kernel cannot tie a child's life to
// its parent's; a test that dies without cleanups may leave its broker.
func dieWithParent(cmd *exec.Cmd) {}
