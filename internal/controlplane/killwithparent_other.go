//go:build !linux

package controlplane

import "os/exec"

// killWithParent does nothing outside Linux: Stop is what stops the process.
func killWithParent(*exec.Cmd) {}
