package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stated-dev/stated/cmd/stated/internal/replay"
	"github.com/stated-dev/stated/transport/client"
	"github.com/stated-dev/stated/transport/wire"
)

// binary is the stated binary the end-to-end tests run, built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "stated-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "stated")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build stated: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// sharedData returns the path of ../shared/data seen from the repository root, or
// skips the test when it is absent.
func sharedData(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../../shared/data")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("shared data missing in CI: %v", err)
		}
		t.Skip("../shared/data is not here")
	}
	return dir
}

// server is a stated process.
type server struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	logs *strings.Builder
}

var listening = regexp.MustCompile(`msg="stated listening" addr=(\S+)`)

// startServer runs "stated serve" with args and waits for it to listen.
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, logs: &strings.Builder{}}
	t.Cleanup(func() { s.kill() })

	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.logs.WriteString(line + "\n")
			if m := listening.FindStringSubmatch(line); m != nil {
				found <- m[1]
			}
		}
		close(found)
	}()
	select {
	case addr, ok := <-found:
		if !ok {
			t.Fatalf("stated exited before listening")
		}
		s.addr = addr
	case <-time.After(20 * time.Second):
		t.Fatal("stated did not start listening within 20s")
	}
	return s
}

func (s *server) url() string { return "ws://" + s.addr + "/v1/ws" }

// kill ends the process with SIGKILL, as a crash would.
func (s *server) kill() {
	if s.cmd.ProcessState == nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
}

func TestReplaySurvivesAKilledServer(t *testing.T) {
	data := sharedData(t)
	files := []string{
		filepath.Join(data, "conversations/taubench-airline.jsonl"),
		filepath.Join(data, "conversations/glaive-tools-en.jsonl"),
		filepath.Join(data, "conversations/openhands-agent.jsonl"),
	}
	convs, err := replay.LoadFiles(files...)
	if err != nil {
		t.Fatal(err)
	}
	system, _ := os.ReadFile(filepath.Join(data, "system-prompts/assistant-long.txt"))
	dataDir := t.TempDir()
	args := []string{"--data", dataDir, "--sim-replies", strings.Join(files, ",")}

	// A reference run against a server that stays up.
	ref := startServer(t, append([]string{"--addr", "127.0.0.1:0", "--data", t.TempDir()},
		args[2:]...)...)
	want, err := replay.Run(context.Background(), replay.Options{Servers: []string{ref.url()},
		System: string(system), Concurrency: 4}, convs)
	if err != nil || want.Errors != 0 {
		t.Fatalf("reference replay: %v, %d errors: %v", err, want.Errors, want.ErrorSamples(3))
	}
	ref.kill()

	// The same replay against a server killed with SIGKILL and started again on the
	// same address and data directory when a third of the conversations are done.
	srv := startServer(t, append([]string{"--addr", "127.0.0.1:0"}, args...)...)
	addr := srv.addr
	var done atomic.Int32
	progress := writerFunc(func(p []byte) { done.Add(int32(strings.Count(string(p), "\n"))) })
	type outcome struct {
		res *replay.Result
		err error
	}
	finished := make(chan outcome, 1)
	go func() {
		res, err := replay.Run(context.Background(), replay.Options{
			Servers: []string{srv.url()}, System: string(system), Concurrency: 4,
			Progress: progress,
		}, convs)
		finished <- outcome{res, err}
	}()
	for done.Load() < int32(len(convs)/3) {
		time.Sleep(time.Millisecond)
	}
	srv.kill()
	killedAt := done.Load()
	startServer(t, append([]string{"--addr", addr}, args...)...)

	out := <-finished
	if out.err != nil || out.res.Errors != 0 {
		t.Fatalf("replay across the kill: %v, %d errors: %v", out.err, out.res.Errors,
			out.res.ErrorSamples(3))
	}
	if int(killedAt) >= len(convs) {
		t.Fatal("the replay ended before the kill: the test tested nothing")
	}
	got := out.res
	if got.Conversations != want.Conversations || got.Turns != want.Turns ||
		got.Diverged != want.Diverged {
		t.Fatalf("across the kill: %d conversations, %d answers, %d diverged; "+
			"want %d, %d, %d", got.Conversations, got.Turns, got.Diverged,
			want.Conversations, want.Turns, want.Diverged)
	}
	t.Logf("killed after %d of %d conversations; %d reconnects", killedAt, len(convs),
		got.Reconnects)
	checkLogs(t, "ws://"+addr+"/v1/ws", got.Sessions)
}

// checkLogs reads every session's log from the server and checks that each turn is
// stored once and answered once.
func checkLogs(t *testing.T, url string, ids []string) {
	t.Helper()
	for _, id := range ids {
		s, err := client.Resume(context.Background(), client.Config{Servers: []string{url}},
			id, 1, 0)
		if err != nil {
			t.Fatalf("resume %s: %v", id, err)
		}
		if err := checkLog(s.History()); err != nil {
			t.Fatalf("session %s: %v", id, err)
		}
		s.Close()
	}
}

func checkLog(events []wire.Event) error {
	seen := map[string]bool{}
	answered := true
	for i, e := range events {
		if e.Seq != uint64(i+1) {
			return fmt.Errorf("event %d has seq %d", i+1, e.Seq)
		}
		switch e.Kind {
		case "user", "tool_result":
			if seen[e.TurnID] {
				return fmt.Errorf("turn %s stored twice", e.TurnID)
			}
			seen[e.TurnID] = true
			answered = false
		case "assistant":
			if answered {
				return fmt.Errorf("seq %d answers a turn that had its answer", e.Seq)
			}
			answered = e.Status == "complete"
		}
	}
	if !answered {
		return fmt.Errorf("the log ends with a turn that has no complete answer")
	}
	return nil
}

type writerFunc func(p []byte)

func (f writerFunc) Write(p []byte) (int, error) {
	f(p)
	return len(p), nil
}

var _ io.Writer = writerFunc(nil)
