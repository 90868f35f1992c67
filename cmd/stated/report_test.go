package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stated-dev/stated/transport/client"
)

// runStated runs the stated binary with args and env added, and returns its
// stdout, stderr and exit code.
func runStated(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func TestServeRefusesToRunOpenOnAnAddressOthersCanReach(t *testing.T) {
	// 192.0.2.1 is a documentation address no machine has: the server must refuse
	// before it tries to listen, and if it did not, listening would fail.
	_, stderr, code := runStated(t, []string{"STATED_ADMIN_KEY="}, "serve",
		"--addr", "192.0.2.1:0", "--data", t.TempDir())
	if code != 1 || !strings.Contains(stderr, "refusing to start") {
		t.Fatalf("exit %d, stderr %q: want a refusal", code, stderr)
	}
	_, stderr, _ = runStated(t, []string{"STATED_ADMIN_KEY="}, "serve",
		"--addr", "192.0.2.1:0", "--data", t.TempDir(), "--auth=off")
	if !strings.Contains(stderr, "authentication is off") || strings.Contains(stderr,
		"refusing to start") {
		t.Fatalf("--auth=off: stderr %q: want the warning and no refusal", stderr)
	}
	_, stderr, code = runStated(t, nil, "serve", "--auth", "maybe")
	if code != 2 {
		t.Fatalf("--auth maybe: exit %d, %q", code, stderr)
	}
}

func TestServeWithAuthOnNeedsKeys(t *testing.T) {
	const admin = "an-admin-key-of-enough-length"
	t.Setenv("STATED_ADMIN_KEY", admin)
	srv := startServer(t, "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--auth", "on")
	base := "http://" + srv.addr

	resp, err := http.Get(base + "/v1/usage")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /v1/usage without a key: %d", resp.StatusCode)
	}
	if _, err := client.Open(context.Background(), client.Config{
		Servers: []string{srv.url()}, ReconnectFor: time.Second}, client.Settings{}); err == nil {
		t.Fatal("a session opened without a key")
	}
	req, _ := http.NewRequest("POST", base+"/v1/tenants", strings.NewReader(`{"name":"acme"}`))
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("creating a tenant with the admin key: %d", resp.StatusCode)
	}
}

func TestReportSummarizesTheLedger(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, "--addr", "127.0.0.1:0", "--data", dir)
	ctx := context.Background()
	var ids []string
	for range 2 {
		s, err := client.Open(ctx, client.Config{Servers: []string{srv.url()}},
			client.Settings{System: strings.Repeat("You are a careful assistant. ", 300)})
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"hello", "and again"} {
			if _, err := s.Ask(ctx, q, nil); err != nil {
				t.Fatal(err)
			}
		}
		ids = append(ids, s.ID())
		s.Close()
	}

	// While the server holds the directory, --data refuses and --server reads.
	_, stderr, code := runStated(t, nil, "report", "--data", dir)
	if code != 1 || !strings.Contains(stderr, "in use by a running server") {
		t.Fatalf("report --data on a live directory: exit %d, %q", code, stderr)
	}
	live, stderr, code := runStated(t, nil, "report", "--server", "http://"+srv.addr, "--json")
	if code != 0 {
		t.Fatalf("report --server: exit %d, %q", code, stderr)
	}
	var sum summary
	if err := json.Unmarshal([]byte(live), &sum); err != nil {
		t.Fatalf("report --json: %v in %q", err, live)
	}
	if sum.Total.Calls != 4 || len(sum.TopSessions) != 2 || sum.Total.CostUSD <= 0 ||
		sum.Total.NaiveCostUSD <= sum.Total.CostUSD {
		t.Fatalf("summary %+v: want 4 calls in 2 sessions, and savings", sum)
	}

	srv.cmd.Process.Signal(syscall.SIGTERM)
	srv.cmd.Wait()
	out, stderr, code := runStated(t, nil, "report", "--data", dir)
	if code != 0 {
		t.Fatalf("report --data: exit %d, %q", code, stderr)
	}
	for _, want := range []string{"provider calls", "stateless clients would have paid",
		"by caching", "claude-sonnet-4-5", ids[0], ids[1]} {
		if !strings.Contains(out, want) {
			t.Fatalf("report lacks %q:\n%s", want, out)
		}
	}
	t.Logf("stated report --data:\n%s", out)
}

// TestTheLedgerMatchesTheLogsAcrossAKill kills the server with SIGKILL while
// answers are being stored and booked, starts it again, and checks that every
// answer in the logs is booked exactly once: none lost between the append and the
// booking, none booked twice.
func TestTheLedgerMatchesTheLogsAcrossAKill(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, "--addr", "127.0.0.1:0", "--data", dir)
	addr := srv.addr
	ctx := context.Background()
	const sessions, turns = 4, 8
	topics := []string{"caching", "budgets", "the ledger", "rollups", "tenants", "keys",
		"tickets", "metrics"} // varied, so the runaway guard lets them be

	var answered atomic.Int32
	done := make(chan []string, 1)
	go func() {
		var ids []string
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range sessions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := client.Open(ctx, client.Config{Servers: []string{srv.url()}},
					client.Settings{})
				if err != nil {
					t.Error(err)
					return
				}
				defer s.Close()
				for i := range turns {
					q := fmt.Sprintf("tell me about %s", topics[i%len(topics)])
					if _, err := s.Ask(ctx, q, nil); err != nil {
						t.Error(err)
						return
					}
					answered.Add(1)
				}
				mu.Lock()
				ids = append(ids, s.ID())
				mu.Unlock()
			}()
		}
		wg.Wait()
		done <- ids
	}()
	for answered.Load() < sessions*turns/3 {
		time.Sleep(time.Millisecond)
	}
	srv.kill()
	killedAt := answered.Load()
	srv = startServer(t, "--addr", addr, "--data", dir)
	ids := <-done
	if killedAt >= sessions*turns || len(ids) != sessions {
		t.Fatalf("killed after %d answers, %d sessions done: the test tested nothing", killedAt,
			len(ids))
	}

	answers := 0
	for _, id := range ids {
		s, err := client.Resume(ctx, client.Config{Servers: []string{srv.url()}}, id, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range s.History() {
			if e.Kind == "assistant" {
				answers++
			}
		}
		s.Close()
	}
	srv.cmd.Process.Signal(syscall.SIGTERM)
	srv.cmd.Wait()
	out, stderr, code := runStated(t, nil, "report", "--data", dir, "--json")
	var sum summary
	if code != 0 || json.Unmarshal([]byte(out), &sum) != nil {
		t.Fatalf("report: exit %d, %q %q", code, stderr, out)
	}
	if sum.Total.Calls != int64(answers) {
		t.Fatalf("the ledger books %d calls, the logs hold %d answers", sum.Total.Calls, answers)
	}
	t.Logf("killed after %d answers; %d answers booked once each", killedAt, answers)
}
