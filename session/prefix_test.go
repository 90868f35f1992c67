package session

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/providers/anthropic"
	"github.com/stated-dev/stated/providers/openai"
	"github.com/stated-dev/stated/providers/sim"
	"github.com/stated-dev/stated/storage"
)

// recordedAgent is a conversation the simulator answers from: a tool round trip
// with two parallel calls, then chat.
const recordedAgent = `{"id":"agent","messages":[` +
	`{"role":"user","content":"list the files and read the readme"},` +
	`{"role":"assistant","content":null,"tool_calls":[` +
	`{"id":"c1","type":"function","function":{"name":"ls","arguments":"{}"}},` +
	`{"id":"c2","type":"function","function":{"name":"cat","arguments":"{\"f\":\"README\"}"}}]},` +
	`{"role":"tool","tool_call_id":"c1","content":"README main.go"},` +
	`{"role":"tool","tool_call_id":"c2","content":"# stated\nA session server."},` +
	`{"role":"assistant","content":"Two files; the readme says it is a session server."},` +
	`{"role":"user","content":"thanks, and what is main.go?"},` +
	`{"role":"assistant","content":"The entry point."}]}`

// TestPrefixBytesHoldAcrossTurnsRestartsAndProcesses sends a session's requests
// through the real adapters to the real simulator, across a reload from the
// store and across a second manager over the same Badger directory, and holds
// the bytes of each request up to its last message against the next request.
func TestPrefixBytesHoldAcrossTurnsRestartsAndProcesses(t *testing.T) {
	for _, api := range []string{"anthropic", "openai"} {
		t.Run("through the "+api+" adapter", func(t *testing.T) {
			bodies := playAcrossProcesses(t, api)
			if len(bodies) < 6 {
				t.Fatalf("%d requests captured; the test played too little", len(bodies))
			}
			for i := range bodies {
				checkBodyPairing(t, api, bodies[i])
				if i == 0 {
					continue
				}
				prev := stripMarkers(bodies[i-1])
				cur := stripMarkers(bodies[i])
				head := prev[:messagesEnd(t, prev)]
				if !bytes.HasPrefix(cur, head) {
					t.Fatalf("request %d does not start with request %d up to its last "+
						"message:\n%s\n%s", i+1, i, head, cur[:min(len(cur), len(head))])
				}
			}
		})
	}
}

// playAcrossProcesses plays six turns of one session: two on a first manager,
// two after the session is evicted and loaded again, two on a second manager
// over the same data directory. It returns the bodies the simulator received.
func playAcrossProcesses(t *testing.T, api string) [][]byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "replies.jsonl")
	if err := os.WriteFile(path, []byte(recordedAgent+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	replies, err := sim.LoadReplies(path)
	if err != nil {
		t.Fatal(err)
	}
	simulator := sim.New(sim.Options{Replies: replies, MaxCaptures: 100})
	srv := httptest.NewServer(simulator)
	t.Cleanup(srv.Close)
	var prov providers.Provider = anthropic.New(anthropic.Config{BaseURL: srv.URL, APIKey: "k"})
	model := "claude-sonnet-4-5"
	if api == "openai" {
		prov = openai.New(openai.Config{BaseURL: srv.URL + "/v1", APIKey: "k"})
		model = "gpt-4.1"
	}
	dir := t.TempDir()
	first, store := startManager(t, dir, model, prov)
	if _, err := first.PutPreset(ctx, "t1", Preset{Name: "agent", System: words("sys", 1200),
		Tools: []providers.Tool{{Name: "ls"}, {Name: "cat"}}}); err != nil {
		t.Fatal(err)
	}
	s, err := first.Open(ctx, "t1", Settings{Preset: "agent"})
	if err != nil {
		t.Fatal(err)
	}
	id := s.ID()
	playTurn(t, s, "a", "list the files and read the readme")
	playTurn(t, s, "b", "thanks, and what is main.go?")

	if n := first.evictIdle(time.Now().Add(time.Hour)); n != 1 {
		t.Fatalf("evicted %d sessions, want 1", n)
	}
	s, err = first.Get(ctx, "t1", id)
	if err != nil {
		t.Fatal(err)
	}
	playTurn(t, s, "c", "and after the reload?")
	playTurn(t, s, "d", "one more")

	first.Close(context.Background())
	store.Close()
	second, _ := startManager(t, dir, model, prov)
	s, err = second.Get(ctx, "t1", id)
	if err != nil {
		t.Fatal(err)
	}
	playTurn(t, s, "e", "and on another process?")
	playTurn(t, s, "f", "the last one")

	var bodies [][]byte
	for _, c := range simulator.Captured() {
		bodies = append(bodies, c.Body)
	}
	return bodies
}

// startManager opens the Badger store in dir and a manager over it, with the
// store's KV space for presets.
func startManager(t *testing.T, dir, model string, prov providers.Provider) (*Manager,
	*storage.Badger) {
	t.Helper()
	store, err := storage.OpenBadger(storage.DefaultBadgerOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	kv, err := store.KV()
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(Config{Model: model, MaxTokens: 200, Presets: kv,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, store, prov)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m, store
}

// playTurn sends a user turn, answers every tool call the answer makes with the
// recorded results, and waits until the session is idle again.
func playTurn(t *testing.T, s *Session, id, text string) {
	t.Helper()
	rec := &recorder{}
	s.Subscribe(rec, s.Info().Epoch, s.Info().LastSeq)
	defer s.Unsubscribe(rec)
	ans := submitAndWait(t, s, rec, userTurn(id, text))
	results := map[string]string{"ls": "README main.go", "cat": "# stated\nA session server."}
	for len(ans.ToolCalls) > 0 {
		var last *Event
		for i, c := range ans.ToolCalls {
			in := toolResult(fmt.Sprintf("%s-r%d", id, i), c.ID, results[c.Name])
			if i < len(ans.ToolCalls)-1 {
				if _, err := s.Submit(ctx, rec, in); err != nil {
					t.Fatal(err)
				}
				continue
			}
			last = submitAndWait(t, s, rec, in)
		}
		ans = last
	}
}

func submitAndWait(t *testing.T, s *Session, rec *recorder, in Input) *Event {
	t.Helper()
	n := len(rec.answers())
	if _, err := s.Submit(ctx, rec, in); err != nil {
		t.Fatal(err)
	}
	ans := rec.waitAnswers(t, n+1)[n]
	if ans.Status != providers.StatusComplete {
		t.Fatalf("answer %+v", ans)
	}
	return ans
}

// stripMarkers removes the cache_control markers, which move from request to
// request by design.
func stripMarkers(body []byte) []byte {
	for _, m := range []string{`,"cache_control":{"type":"ephemeral","ttl":"1h"}`,
		`,"cache_control":{"type":"ephemeral"}`} {
		body = bytes.ReplaceAll(body, []byte(m), nil)
	}
	return body
}

// messagesEnd returns the offset in body just after its last message: before the
// bracket that closes the messages array.
func messagesEnd(t *testing.T, body []byte) int {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // {
		t.Fatal(err)
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if key == "messages" {
			return int(dec.InputOffset()) - 1
		}
	}
	t.Fatal("no messages in the body")
	return 0
}

func checkBodyPairing(t *testing.T, api string, body []byte) {
	t.Helper()
	check := CheckAnthropicPairing
	if api == "openai" {
		check = CheckOpenAIPairing
	}
	if err := check(body); err != nil {
		t.Fatalf("a request broke the pairing: %v\n%s", err, strings.TrimSpace(string(body)))
	}
}
