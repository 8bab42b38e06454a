package controlplane

import (
	"os/exec"
	"syscall"
)

// killWithParent has the kernel kill cmd's process when this process dies,
// however it dies: a test binary killed by `go test -timeout` (SIGKILL) runs
// no Stop, and a controller manager left behind would retry its apiserver
// for ever. (The kernel watches the thread that started the process; the Go
// runtime keeps its threads but for one whose goroutine locked it and exited.)
func killWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
