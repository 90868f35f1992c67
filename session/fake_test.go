package session

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/storage"
)

// fakeProvider is an in-memory provider for unit tests: it answers each request
// with the next scripted reply, streaming the text word by word.
type fakeProvider struct {
	mu       sync.Mutex
	requests []*providers.Request
	replies  []fakeReply
	// gate, when set, holds every answer after its first delta until it is closed.
	gate chan struct{}
}

type fakeReply struct {
	text  string
	calls []providers.ToolCall
	err   error // returned after the text has streamed (nil: a complete answer)
	early bool  // err is returned before anything streams
}

func (f *fakeProvider) Name() string { return "fake" }

func (f *fakeProvider) Complete(ctx context.Context, req *providers.Request,
	onDelta func(providers.Delta)) (*providers.Response, error) {
	f.mu.Lock()
	f.requests = append(f.requests, req)
	r := fakeReply{text: "answer " + req.Messages[len(req.Messages)-1].Text}
	if len(f.replies) > 0 {
		r, f.replies = f.replies[0], f.replies[1:]
	}
	gate := f.gate
	f.mu.Unlock()

	if r.early {
		return nil, r.err
	}
	resp := &providers.Response{Model: req.Model, Status: providers.StatusComplete,
		StopReason: providers.StopEnd}
	for i, w := range strings.SplitAfter(r.text, " ") {
		if w == "" {
			continue
		}
		resp.Text += w
		onDelta(providers.Delta{Kind: providers.DeltaText, Text: w})
		if i == 0 && gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
				resp.Status = providers.StatusIncomplete
				return resp, ctx.Err()
			}
		}
	}
	for i, c := range r.calls {
		onDelta(providers.Delta{Kind: providers.DeltaToolCall, Index: i, ID: c.ID, Name: c.Name,
			Arguments: c.Arguments})
		resp.ToolCalls = append(resp.ToolCalls, c)
		resp.StopReason = providers.StopToolUse
	}
	if r.err != nil {
		resp.Status = providers.StatusIncomplete
		return resp, r.err
	}
	resp.Usage = providers.Usage{InputTokens: 10, CacheReadTokens: 90, OutputTokens: 5}
	resp.UsageReported = true
	return resp, nil
}

func (f *fakeProvider) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

func (f *fakeProvider) lastRequest() *providers.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[len(f.requests)-1]
}

// recorder is a Subscriber for tests that keeps every note.
type recorder struct {
	mu    sync.Mutex
	notes []Note
}

func (r *recorder) Deliver(n Note) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, n)
}

func (r *recorder) snapshot() []Note {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Note(nil), r.notes...)
}

// waitFor polls until cond holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// answers returns the answer events a recorder has seen.
func (r *recorder) answers() []*Event {
	var out []*Event
	for _, n := range r.snapshot() {
		if n.Kind == NoteEvent && n.Event.Kind == KindAssistant {
			out = append(out, n.Event)
		}
	}
	return out
}

func (r *recorder) waitAnswers(t *testing.T, n int) []*Event {
	t.Helper()
	waitFor(t, "answers", func() bool { return len(r.answers()) >= n })
	return r.answers()
}

type harness struct {
	t     *testing.T
	store storage.Store
	prov  *fakeProvider
	mgr   *Manager
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, store: storage.NewMemory(), prov: &fakeProvider{}}
	h.restart()
	return h
}

// restart replaces the manager with a new one over the same store, as a process
// restart would.
func (h *harness) restart() {
	h.t.Helper()
	if h.mgr != nil {
		h.mgr.Close(context.Background())
	}
	mgr, err := NewManager(Config{
		Model: "fake-model", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Cost: func(model string, u providers.Usage) (float64, error) {
			return float64(u.PromptTokens()+u.OutputTokens) * 1e-6, nil
		},
	}, h.store, h.prov)
	if err != nil {
		h.t.Fatal(err)
	}
	h.mgr = mgr
	h.t.Cleanup(func() { mgr.Close(context.Background()) })
}

func (h *harness) open(st Settings) (*Session, *recorder) {
	h.t.Helper()
	s, err := h.mgr.Open(context.Background(), "t1", st)
	if err != nil {
		h.t.Fatal(err)
	}
	rec := &recorder{}
	s.Subscribe(rec, s.Info().Epoch, 0)
	return s, rec
}

func userTurn(id, text string) Input {
	return Input{Kind: KindUser, TurnID: id, Text: text}
}

func toolResult(id, call, text string) Input {
	return Input{Kind: KindToolResult, TurnID: id, ToolCallID: call, Text: text}
}
