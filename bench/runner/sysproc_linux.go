package runner

import "syscall"

// childAttr makes a server die with the runner, should the runner crash.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
