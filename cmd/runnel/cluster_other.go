//go:build !linux

package main

import "os/exec"

// dieWithParent does nothing where the kernel cannot signal a child when
// its parent dies: stop the cluster with SIGINT or SIGTERM there.
func dieWithParent(*exec.Cmd) {}
