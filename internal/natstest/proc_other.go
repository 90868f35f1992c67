//go:build !linux

package natstest

import "syscall"

// procAttr has no parent-death signal outside Linux: there, only the test's
// cleanups stop the servers.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{}
}
