package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// quantiles is a {"p50","p99","max","count"} object of the bench's output.
type quantiles struct {
	P50   *float64 `json:"p50"`
	P99   *float64 `json:"p99"`
	Max   *float64 `json:"max"`
	Count int      `json:"count"`
}

// runBench runs "stated bench" with args, expects it to succeed, and returns
// its JSON object both as a map (to check keys) and decoded into out.
func runBench(t *testing.T, out any, args ...string) map[string]json.RawMessage {
	t.Helper()
	stdout, stderr, code := runStated(t, nil, append([]string{"bench", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("bench exited %d: %s\n%s", code, stderr, stdout)
	}
	t.Logf("stated bench %s:\n%s", strings.Join(args, " "), stderr)
	var keys map[string]json.RawMessage
	if err := json.Unmarshal([]byte(stdout), &keys); err != nil {
		t.Fatalf("bench printed no single JSON object: %v\n%s", err, stdout)
	}
	if err := json.Unmarshal([]byte(stdout), out); err != nil {
		t.Fatal(err)
	}
	return keys
}

// requireKeys fails unless every name is a key of obj.
func requireKeys(t *testing.T, obj map[string]json.RawMessage, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, ok := obj[n]; !ok {
			t.Errorf("the output has no %q", n)
		}
	}
}

// ordered fails unless p50 <= p99 <= max, all present, over count durations.
func ordered(t *testing.T, name string, q quantiles, count int) {
	t.Helper()
	if q.P50 == nil || q.P99 == nil || q.Max == nil {
		t.Errorf("%s: a quantile is missing: %+v", name, q)
		return
	}
	if !(*q.P50 > 0 && *q.P50 <= *q.P99 && *q.P99 <= *q.Max) {
		t.Errorf("%s: want 0 < p50 <= p99 <= max, got %g, %g, %g", name, *q.P50, *q.P99,
			*q.Max)
	}
	if count >= 0 && q.Count != count {
		t.Errorf("%s: over %d durations, want %d", name, q.Count, count)
	}
}

func TestBenchMeasuresARealServer(t *testing.T) {
	srv := startServer(t, "--addr", "127.0.0.1:0", "--data", t.TempDir(),
		"--idle-timeout", "1s")

	// Memory first, on a quiet server: 50 sessions make a small difference, and
	// what earlier runs leave to be freed would blur it.
	checkIdleRun(t, srv)
	waitNoSessions(t, srv)

	// A first run leaves its own counts in the server's histograms, so that the
	// second run's figures are right only if they are its window alone.
	var warm struct{ Turns int }
	runBench(t, &warm, "--server", srv.url(), "--sessions", "2", "--turns", "1",
		"--resume=false")
	if warm.Turns != 2 {
		t.Fatalf("the first run answered %d turns, want 2", warm.Turns)
	}
	checkTurnRun(t, srv)
}

// checkTurnRun runs 4 sessions of 3 turns and checks every figure.
func checkTurnRun(t *testing.T, srv *server) {
	t.Helper()
	var turns struct {
		Sessions, Turns, Errors, Resumes int
		TurnsPerSec                      float64   `json:"turns_per_sec"`
		Added                            quantiles `json:"added_ms"`
		Relay                            quantiles `json:"relay_ms"`
		RelayFirst                       quantiles `json:"relay_first_ms"`
		CommitWait                       quantiles `json:"commit_wait_ms"`
		RelayPath                        quantiles `json:"relay_path_ms"`
		FirstDelta                       quantiles `json:"first_delta_ms"`
		Answer                           quantiles `json:"answer_ms"`
		Resume                           quantiles `json:"resume_ms"`
		ResumeCold                       bool      `json:"resume_cold"`
		CPUPerTurn                       float64   `json:"cpu_sec_per_turn"`
		ByHistory                        []struct {
			History, Turns int
			CPUPerTurn     float64 `json:"cpu_sec_per_turn"`
		} `json:"cpu_by_history"`
	}
	keys := runBench(t, &turns, "--server", srv.url(), "--sessions", "4", "--turns", "3")
	requireKeys(t, keys, "turns_per_sec", "added_ms", "relay_ms", "relay_first_ms",
		"commit_wait_ms", "relay_path_ms", "cpu_sec_per_turn", "cpu_by_history", "resume_ms",
		"resume_cold", "sessions",
		"turns", "errors", "errors_by_code", "server_before", "server_after")
	if turns.Sessions != 4 || turns.Turns != 12 || turns.Errors != 0 || turns.Resumes != 4 {
		t.Errorf("%d sessions, %d turns answered, %d errors, %d resumes; want 4, 12, 0, 4",
			turns.Sessions, turns.Turns, turns.Errors, turns.Resumes)
	}
	if !(turns.TurnsPerSec > 0) || !(turns.CPUPerTurn > 0) || !turns.ResumeCold {
		t.Errorf("turns/s %g, CPU s/turn %g, resume cold %v: want positive, positive, true",
			turns.TurnsPerSec, turns.CPUPerTurn, turns.ResumeCold)
	}
	// The server records one added time and one first relay per answer: counts
	// that match say the window between the snapshots is this run's.
	ordered(t, "added_ms", turns.Added, 12)
	ordered(t, "relay_first_ms", turns.RelayFirst, 12)
	ordered(t, "relay_ms", turns.Relay, -1)
	ordered(t, "relay_path_ms", turns.RelayPath, int(turns.Relay.Count))
	// Only deltas read before their turn was durable wait for it: some or none.
	if turns.CommitWait.Count > 0 {
		ordered(t, "commit_wait_ms", turns.CommitWait, -1)
	}
	if turns.CommitWait.Count > turns.Relay.Count {
		t.Errorf("commit_wait_ms over %d deltas, relay_ms over %d: want at most one each",
			turns.CommitWait.Count, turns.Relay.Count)
	}
	ordered(t, "first_delta_ms", turns.FirstDelta, 12)
	ordered(t, "answer_ms", turns.Answer, 12)
	ordered(t, "resume_ms", turns.Resume, 4)
	if len(turns.ByHistory) != 3 {
		t.Fatalf("cpu_by_history has %d windows, want one per round: %+v",
			len(turns.ByHistory), turns.ByHistory)
	}
	for i, w := range turns.ByHistory {
		if w.History != i || w.Turns != 4 || !(w.CPUPerTurn > 0) {
			t.Errorf("window %d: %+v, want history %d, 4 turns, CPU > 0", i, w, i)
		}
	}
}

// checkIdleRun opens 50 idle sessions and checks the memory figures.
func checkIdleRun(t *testing.T, srv *server) {
	t.Helper()
	var idle struct {
		Sessions        int
		ConnectFailures map[string]int `json:"connect_failures"`
		BytesPerSession *float64       `json:"idle_bytes_per_session"`
		HeapPerSession  *float64       `json:"idle_heap_bytes_per_session"`
	}
	keys := runBench(t, &idle, "--server", srv.url(), "--idle", "--sessions", "50",
		"--hold", "100ms")
	requireKeys(t, keys, "idle_bytes_per_session", "idle_heap_bytes_per_session",
		"idle_stack_bytes_per_session", "sessions", "errors", "server_before", "server_after")
	if idle.Sessions != 50 || len(idle.ConnectFailures) != 0 {
		t.Errorf("%d idle sessions, failures %v; want 50, none", idle.Sessions,
			idle.ConnectFailures)
	}
	if idle.BytesPerSession == nil || idle.HeapPerSession == nil {
		t.Fatal("no idle figures")
	}
	if !(*idle.BytesPerSession > 0) || !(*idle.HeapPerSession > 0) {
		t.Errorf("idle bytes per session %g, heap %g: want positive numbers",
			*idle.BytesPerSession, *idle.HeapPerSession)
	}
}

// waitNoSessions polls the server's /stats until it holds no session in memory.
func waitNoSessions(t *testing.T, srv *server) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var s struct {
			SessionsInMemory *int `json:"sessions_in_memory"`
		}
		resp, err := http.Get("http://" + srv.addr + "/stats")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&s)
			resp.Body.Close()
		}
		if err == nil && s.SessionsInMemory != nil && *s.SessionsInMemory == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server still holds sessions after 10s (%v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestBenchRefusesBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no sessions", []string{"--sessions", "0"}, "--sessions"},
		{"turns with an idle run", []string{"--idle", "--turns", "3"}, "--turns"},
		{"a hold without an idle run", []string{"--hold", "1s"}, "--hold"},
		{"a server that is not a WebSocket URL", []string{"--server", "127.0.0.1:1"},
			"--server"},
		{"a turn larger than the protocol allows", []string{"--text-bytes", "600000"},
			"--text-bytes"},
		{"an argument", []string{"extra"}, "unexpected argument"},
		{"a count that is not a number", []string{"--sessions", "many"}, "flag -sessions"},
		{"a flag that does not exist", []string{"--sesions", "3"}, "-sesions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := runStated(t, nil, append([]string{"bench"}, tt.args...)...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q: want 2 and a message naming %s", code, stderr,
					tt.want)
			}
		})
	}
}
