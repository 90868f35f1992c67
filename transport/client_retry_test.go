package transport_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stated-dev/stated/providers/anthropic"
	"github.com/stated-dev/stated/providers/sim"
	"github.com/stated-dev/stated/session"
	"github.com/stated-dev/stated/storage"
	"github.com/stated-dev/stated/transport"
	"github.com/stated-dev/stated/transport/client"
)

// flakyStore fails the appends it is told to, as a cluster store does while a
// NATS server is lost and a write times out; nothing is written then.
type flakyStore struct {
	storage.Store
	failures atomic.Int32
}

func (f *flakyStore) Append(ctx context.Context, id string, recs []storage.Record) error {
	if f.failures.Add(-1) >= 0 {
		return errors.New("flaky store: write timed out")
	}
	return f.Store.Append(ctx, id, recs)
}

// TestClientSendsARefusedTurnAgain refuses a turn's first two writes: the
// server answers "internal" (retryable) and acknowledges nothing, and the Go
// client must send the turn again until it is stored and answered, once.
func TestClientSendsARefusedTurnAgain(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	simulator := httptest.NewServer(sim.New(sim.Options{}))
	t.Cleanup(simulator.Close)
	store := &flakyStore{Store: storage.NewMemory()}
	mgr, err := session.NewManager(session.Config{Model: "claude-sonnet-4-5", MaxTokens: 256,
		Logger: quiet}, store,
		anthropic.New(anthropic.Config{BaseURL: simulator.URL, APIKey: "test"}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close(context.Background()) })
	api, err := transport.NewServer(transport.Config{Logger: quiet}, mgr)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/ws"
	s, err := client.Open(ctx, client.Config{Servers: []string{url}}, client.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	store.failures.Store(2)
	ans, err := s.Ask(ctx, "hello", nil)
	if err != nil {
		t.Fatalf("Ask after two refused writes: %v", err)
	}
	if ans.Seq != 2 || ans.Status != "complete" {
		t.Fatalf("answer %+v, want seq 2, complete", ans)
	}
	again, err := client.Resume(ctx, client.Config{Servers: []string{url}}, s.ID(), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if h := again.History(); len(h) != 2 || h[0].Kind != "user" || h[1].Seq != ans.Seq {
		t.Fatalf("log of %d events, want the turn once and its answer", len(h))
	}
}
