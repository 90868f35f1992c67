package natstest

import "syscall"

// procAttr makes the kernel kill a server if the test process dies without
// running its cleanups. Pdeathsig follows the thread that started the child;
// Go ends a thread only when a goroutine locked to it exits without unlocking,
// which nothing here does.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
