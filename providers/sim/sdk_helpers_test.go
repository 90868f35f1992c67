package sim_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/providers/sim"
)

// A recorded conversation with two parallel tool calls, then a text answer
// after their results.
const (
	weatherQuestion = "What is the weather in Paris and in Rome?"
	parisResult     = "Paris: 18C, light rain."
	romeResult      = "Rome: 24C, sunny."
	weatherAnswer   = "Paris is at 18C with light rain; Rome is at 24C and sunny."
	weatherRecord   = `{"id":"w1","messages":[` +
		`{"role":"system","content":"You answer weather questions."},` +
		`{"role":"user","content":"` + weatherQuestion + `"},` +
		`{"role":"assistant","content":null,"tool_calls":[` +
		`{"id":"call_paris","type":"function","function":{"name":"get_weather",` +
		`"arguments":"{\"city\":\"Paris\"}"}},` +
		`{"id":"call_rome","type":"function","function":{"name":"get_weather",` +
		`"arguments":"{\"city\":\"Rome\"}"}}]},` +
		`{"role":"tool","tool_call_id":"call_paris","content":"` + parisResult + `"},` +
		`{"role":"tool","tool_call_id":"call_rome","content":"` + romeResult + `"},` +
		`{"role":"assistant","content":"` + weatherAnswer + `"}]}`
)

// A recorded conversation with a long answer.
const (
	storyQuestion = "Tell me a long story."
	storyRecord   = `{"id":"s1","messages":[{"role":"user","content":"` + storyQuestion +
		`"},{"role":"assistant","content":"Once upon a time a session server kept every ` +
		`conversation it was given, turn after turn, and never lost one. It laid out each ` +
		`request so that the provider's cache would hit, and it counted what it saved. ` +
		`Years went by, and the ledger grew long."}]}`
)

// weatherReplies loads the recorded weather and story conversations.
func weatherReplies(t *testing.T) *sim.Replies {
	t.Helper()
	path := filepath.Join(t.TempDir(), "weather.jsonl")
	data := weatherRecord + "\n" + storyRecord + "\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := sim.LoadReplies(path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// startSim starts a simulator on a loopback httptest server and returns both.
func startSim(t *testing.T, opts sim.Options) (*sim.Server, *httptest.Server) {
	t.Helper()
	s := sim.New(opts)
	srv := httptest.NewServer(s)
	t.Cleanup(func() {
		s.Close()
		srv.Close()
	})
	return s, srv
}

// anthropicClient returns an official Anthropic client of the simulator, with
// retries off so that errors reach the test.
func anthropicClient(srv *httptest.Server, key string,
	opts ...aoption.RequestOption) anthropic.Client {
	return anthropic.NewClient(append([]aoption.RequestOption{aoption.WithBaseURL(srv.URL),
		aoption.WithAPIKey(key), aoption.WithMaxRetries(0)}, opts...)...)
}

// openaiClient returns an official OpenAI client of the simulator, with
// retries off.
func openaiClient(srv *httptest.Server, key string,
	opts ...ooption.RequestOption) openai.Client {
	return openai.NewClient(append([]ooption.RequestOption{ooption.WithBaseURL(srv.URL + "/v1"),
		ooption.WithAPIKey(key), ooption.WithMaxRetries(0)}, opts...)...)
}

// ctxFor returns a context that ends with the test or after a deadline.
func ctxFor(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// longPrompt returns deterministic prose of at least n tokens.
func longPrompt(n int) string {
	var b strings.Builder
	for i := 0; providers.CountTokens(b.String()) < n; i++ {
		for j := 0; j < 20; j++ {
			fmt.Fprintf(&b, "Rule %d.%d: answers stay short and cite the policy section. ", i, j)
		}
	}
	return b.String()
}

// wantStatus checks that err is an API error of the given status, as the
// SDK's error type reports it, and returns its response.
func wantAnthropicStatus(t *testing.T, err error, status int) *anthropic.Error {
	t.Helper()
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("error %v (%T) is not an *anthropic.Error", err, err)
	}
	if apiErr.StatusCode != status {
		t.Fatalf("status %d, want %d: %v", apiErr.StatusCode, status, err)
	}
	return apiErr
}

func wantOpenAIStatus(t *testing.T, err error, status int) *openai.Error {
	t.Helper()
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("error %v (%T) is not an *openai.Error", err, err)
	}
	if apiErr.StatusCode != status {
		t.Fatalf("status %d, want %d: %v", apiErr.StatusCode, status, err)
	}
	return apiErr
}

// faultHeader returns the request option that sets a request's fault.
func withFault(fault string) aoption.RequestOption {
	return aoption.WithHeader("x-sim-fault", fault)
}

func withOpenAIFault(fault string) ooption.RequestOption {
	return ooption.WithHeader("x-sim-fault", fault)
}

// retryAfter returns the retry-after header of an error's response.
func retryAfter(resp *http.Response) string {
	if resp == nil {
		return ""
	}
	return resp.Header.Get("retry-after")
}
