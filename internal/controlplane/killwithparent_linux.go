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
//
// It also puts the process in a process group of its own: a Ctrl-C in the
// terminal of `make run` signals the whole foreground group, and a
// controller manager interrupted that way would exit before Stop, which
// stops it in order, and turn a clean stop into an error.
func killWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
