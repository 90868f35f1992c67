package session

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/storage"
)

// cutAfterStartProvider is an in-memory provider for unit tests whose stream
// reports usage at its start only (as Anthropic's message_start does, with
// output_tokens 1) and then breaks after some text.
type cutAfterStartProvider struct{}

func (cutAfterStartProvider) Name() string { return "fake-cut" }

func (cutAfterStartProvider) Complete(ctx context.Context, req *providers.Request,
	onDelta func(providers.Delta)) (*providers.Response, error) {
	text := "a fairly long piece of an answer that the client saw before the stream broke"
	onDelta(providers.Delta{Kind: providers.DeltaText, Text: text})
	return &providers.Response{Model: req.Model, Text: text, Status: providers.StatusIncomplete,
			Usage: providers.Usage{InputTokens: 10, OutputTokens: 1}, UsageReported: true},
		providers.ErrStreamCut
}

// Regression: an answer cut after Anthropic's message_start was billed as one
// output token whatever it had streamed, so stopping early bought output free.
func TestACutAnswerIsBilledForWhatItStreamed(t *testing.T) {
	mgr, err := NewManager(Config{Model: "m",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		storage.NewMemory(), cutAfterStartProvider{})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close(context.Background())
	s, err := mgr.Open(context.Background(), "t", Settings{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	s.Subscribe(rec, s.Info().Epoch, 0)
	if _, err := s.Submit(context.Background(), rec, userTurn("u1", "go")); err != nil {
		t.Fatal(err)
	}
	ans := rec.waitAnswers(t, 1)[0]
	if ans.Usage.OutputTokens != ans.Tokens || ans.Tokens < 10 || !ans.UsageEstimate {
		t.Fatalf("cut answer of %d tokens billed %d output tokens (estimate %v)", ans.Tokens,
			ans.Usage.OutputTokens, ans.UsageEstimate)
	}
}
