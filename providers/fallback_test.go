package providers_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stated-dev/stated/providers"
)

// fallbackRig routes claude models to one scripted server and gpt models to
// another, through a Retrier, as the daemon wires them.
type fallbackRig struct {
	claude, gpt *scriptedServer
	clock       fakeClock
	logged      bytes.Buffer
}

func newFallbackRig(t *testing.T, claude, gpt []http.HandlerFunc) *fallbackRig {
	t.Helper()
	return &fallbackRig{claude: startScripted(t, claude...), gpt: startScripted(t, gpt...)}
}

func (r *fallbackRig) provider(defaults ...string) *providers.Fallback {
	router := providers.NewRouter(
		providers.Route{Prefixes: []string{"claude"}, Provider: r.claude.anthropic()},
		providers.Route{Prefixes: []string{"gpt"}, Provider: r.gpt.openai()},
	)
	retrier := providers.NewRetrier(router, policy(&r.clock, &r.logged))
	return providers.NewFallback(retrier, defaults,
		slog.New(slog.NewTextHandler(&r.logged, nil)))
}

func TestFallbackTriesTheNextModelAfterATemporaryFailure(t *testing.T) {
	rig := newFallbackRig(t,
		[]http.HandlerFunc{anthropicError(529, "overloaded_error")},
		[]http.HandlerFunc{oAnswer})
	req := hello("claude-sonnet-4-5")
	req.Fallback = []string{"gpt-4.1"}

	var text deltaText
	resp, err := rig.provider().Complete(context.Background(), req, text.add)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Model != "gpt-4.1-2025-04-14" || resp.Text != "Hi" || text.String() != "Hi" {
		t.Fatalf("answer %+v, deltas %q; want gpt-4.1's", resp, text.String())
	}
	if rig.claude.count() != 3 || rig.gpt.count() != 1 {
		t.Fatalf("requests: claude %d, gpt %d; want 3 (with retries) and 1",
			rig.claude.count(), rig.gpt.count())
	}
	if !strings.Contains(rig.logged.String(), "next_model=gpt-4.1") {
		t.Fatalf("no fallback log line:\n%s", rig.logged.String())
	}
}

func TestFallbackUsesItsDefaultsWhenTheRequestHasNone(t *testing.T) {
	rig := newFallbackRig(t,
		[]http.HandlerFunc{anthropicError(503, "api_error")},
		[]http.HandlerFunc{oAnswer})
	resp, err := rig.provider("gpt-4.1").Complete(context.Background(),
		hello("claude-sonnet-4-5"), nil)
	if err != nil || resp.Model != "gpt-4.1-2025-04-14" {
		t.Fatalf("got %+v, %v; want gpt-4.1's answer", resp, err)
	}
}

func TestFallbackPrefersTheRequestsListToItsDefaults(t *testing.T) {
	overloaded := anthropicError(529, "overloaded_error")
	rig := newFallbackRig(t,
		// Three attempts of claude-opus-4-1 fail, then claude-haiku-4-5 answers.
		[]http.HandlerFunc{overloaded, overloaded, overloaded, aAnswer},
		[]http.HandlerFunc{overloaded})
	req := hello("claude-opus-4-1")
	req.Fallback = []string{"claude-haiku-4-5"}
	// The default would be gpt, whose server fails; the request's list wins.
	resp, err := rig.provider("gpt-4.1").Complete(context.Background(), req, nil)
	if err != nil || resp.Text != "Hi" || rig.claude.count() != 4 || rig.gpt.count() != 0 {
		t.Fatalf("got %+v, %v after %d claude and %d gpt requests; want 4 and 0",
			resp, err, rig.claude.count(), rig.gpt.count())
	}
}

func TestFallbackDoesNotHelpWhereItCannot(t *testing.T) {
	tests := []struct {
		name   string
		claude http.HandlerFunc
		check  func(t *testing.T, resp *providers.Response, err error)
	}{
		{
			name:   "a refused request is not sent to the next model",
			claude: anthropicError(400, "invalid_request_error"),
			check: func(t *testing.T, resp *providers.Response, err error) {
				if !statusIs(400)(err) || resp != nil {
					t.Fatalf("got %+v, %v; want the 400", resp, err)
				}
			},
		},
		{
			name:   "an answer that started streaming is not answered again",
			claude: stream(aStart, aDelta),
			check: func(t *testing.T, resp *providers.Response, err error) {
				if !errors.Is(err, providers.ErrStreamCut) || resp == nil ||
					resp.Text != "Hi" || resp.Status != providers.StatusIncomplete {
					t.Fatalf("got %+v, %v; want the partial answer and the cut", resp, err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rig := newFallbackRig(t, []http.HandlerFunc{tc.claude}, []http.HandlerFunc{oAnswer})
			req := hello("claude-sonnet-4-5")
			req.Fallback = []string{"gpt-4.1"}
			resp, err := rig.provider().Complete(context.Background(), req, nil)
			tc.check(t, resp, err)
			if n := rig.gpt.count(); n != 0 {
				t.Fatalf("%d requests to the fallback, want none", n)
			}
		})
	}
}

func TestFallbackReturnsTheLastFailureWhenEveryModelFails(t *testing.T) {
	rig := newFallbackRig(t,
		[]http.HandlerFunc{anthropicError(529, "overloaded_error")},
		[]http.HandlerFunc{status(503, `{"error":{"message":"down","type":"server_error"}}`)})
	req := hello("claude-sonnet-4-5")
	req.Fallback = []string{"gpt-4.1"}
	_, err := rig.provider().Complete(context.Background(), req, nil)
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Provider != "openai" || pe.Status != 503 {
		t.Fatalf("err %v, want gpt-4.1's 503", err)
	}
}

func TestFallbackSkipsModelsNoProviderServesAndRepeats(t *testing.T) {
	rig := newFallbackRig(t,
		[]http.HandlerFunc{anthropicError(529, "overloaded_error")},
		[]http.HandlerFunc{oAnswer})
	req := hello("claude-sonnet-4-5")
	req.Fallback = []string{"claude-sonnet-4-5", "mistral-large", "gpt-4.1"}
	resp, err := rig.provider().Complete(context.Background(), req, nil)
	if err != nil || resp.Model != "gpt-4.1-2025-04-14" {
		t.Fatalf("got %+v, %v", resp, err)
	}
	if rig.claude.count() != 3 {
		t.Fatalf("claude asked %d times, want 3: the repeat must not count", rig.claude.count())
	}
	if !strings.Contains(rig.logged.String(), "model=mistral-large") {
		t.Fatalf("the unserved model was not reported:\n%s", rig.logged.String())
	}
}

func TestFallbackServesWhatTheWrappedProviderServes(t *testing.T) {
	rig := newFallbackRig(t, []http.HandlerFunc{aAnswer}, []http.HandlerFunc{oAnswer})
	p := rig.provider()
	if !p.Serves("claude-haiku-4-5") || !p.Serves("gpt-4.1") || p.Serves("mistral-large") {
		t.Fatal("Serves does not follow the router")
	}
	if p.Name() != "anthropic+openai" {
		t.Fatalf("Name() = %q", p.Name())
	}
}
