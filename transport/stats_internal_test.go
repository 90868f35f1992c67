package transport

import (
	"errors"
	"os"
	"runtime"
	"syscall"
	"testing"
)

// TestResidentMemoryIsReadWithNoFileLeft checks that /stats still reports the
// resident set when the process has used up its open files, as a server under a
// connection load test does.
func TestResidentMemoryIsReadWithNoFileLeft(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	if residentBytes() <= 0 {
		t.Fatal("no resident set read from /proc/self/statm")
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	lowered := old
	lowered.Cur = uint64(openFDs() + 8)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lowered); err != nil {
		t.Skipf("cannot lower the open-file limit: %v", err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)

	// Use up every file the lowered limit leaves.
	var held []*os.File
	defer func() {
		for _, f := range held {
			f.Close()
		}
	}()
	for {
		f, err := os.Open(os.DevNull)
		if errors.Is(err, syscall.EMFILE) {
			break
		}
		if err != nil || len(held) > 64 {
			t.Fatalf("filling the open files: %d open, %v", len(held), err)
		}
		held = append(held, f)
	}
	if residentBytes() <= 0 {
		t.Error("no resident set read with every file in use")
	}
}
