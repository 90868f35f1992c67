package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stated-dev/stated/providers"
)

// streamRequests are one streamed request per API, with its path and headers.
func streamRequests() []struct {
	name    string
	path    string
	headers map[string]string
	req     map[string]any
} {
	return []struct {
		name    string
		path    string
		headers map[string]string
		req     map[string]any
	}{
		{"messages", messagesPath, anthropicHeaders("k"), map[string]any{"model": sonnet,
			"max_tokens": 256, "stream": true, "messages": []any{msg("user", text("Hi."))}}},
		{"chat completions", chatPath, openaiHeaders("k"), map[string]any{"model": gpt,
			"stream": true, "messages": []any{chatMsg("user", "Hi.")}}},
		{"responses", responsesPath, openaiHeaders("k"), map[string]any{"model": gpt,
			"stream": true, "input": "Hi."}},
	}
}

// completeEvents returns the events of a stream body that arrived whole.
func completeEvents(body []byte) []string {
	parts := strings.Split(string(body), "\n\n")
	return parts[:len(parts)-1]
}

func TestAStreamCutAfterThreeEventsEndsWithoutItsEnd(t *testing.T) {
	for _, tt := range streamRequests() {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, Options{})
			tt.headers[faultHeader] = "cut=3"
			resp, body, err := postRaw(t, srv, tt.path, tt.headers, tt.req)
			if resp.StatusCode != http.StatusOK || err == nil {
				t.Fatalf("status %d, read error %v: want 200 and a broken body",
					resp.StatusCode, err)
			}
			if got := completeEvents(body); len(got) != 3 {
				t.Errorf("%d events before the cut, want 3: %q", len(got), body)
			}
		})
	}
}

func TestAnErrorEventEndsTheStreamInTheProvidersFormat(t *testing.T) {
	want := []string{
		"event: error\ndata: {\"error\":{\"message\":\"Overloaded\",\"type\":" +
			"\"overloaded_error\"},\"type\":\"error\"}",
		"data: {\"error\":{\"code\":null,\"message\":\"The server had an error while " +
			"processing your request. Sorry about that!\",\"param\":null,\"type\":" +
			"\"server_error\"}}",
		"event: error\ndata: {\"code\":\"server_error\",\"message\":\"The server had an " +
			"error while processing your request. Sorry about that!\",\"param\":null," +
			"\"sequence_number\":2,\"type\":\"error\"}",
	}
	for i, tt := range streamRequests() {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, Options{})
			tt.headers[faultHeader] = "error-event=2"
			resp, body, err := postRaw(t, srv, tt.path, tt.headers, tt.req)
			events := completeEvents(body)
			if err != nil || resp.StatusCode != http.StatusOK || len(events) != 3 {
				t.Fatalf("status %d, %v, events %q", resp.StatusCode, err, events)
			}
			if events[2] != want[i] {
				t.Errorf("error event\n%s\nwant\n%s", events[2], want[i])
			}
		})
	}
}

func TestAStalledStreamWaitsForTheClientToGiveUp(t *testing.T) {
	for _, tt := range streamRequests() {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{})
			srv := startHandler(t, s)
			// A first request loads the tokenizer, so that the deadline below
			// covers only the stalled one.
			if resp, body, err := postRaw(t, srv, tt.path, tt.headers, tt.req); err != nil ||
				resp.StatusCode != http.StatusOK {
				t.Fatalf("warm-up: %d %v %s", resp.StatusCode, err, body)
			}
			raw, _ := json.Marshal(tt.req)
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+tt.path,
				bytes.NewReader(raw))
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			req.Header.Set(faultHeader, "stall=2")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body bytes.Buffer
			_, err = body.ReadFrom(resp.Body)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("read ended with %v, want the client's deadline", err)
			}
			if got := completeEvents(body.Bytes()); len(got) != 2 {
				t.Errorf("%d events before the stall, want 2", len(got))
			}
		})
	}
}

func TestCloseReleasesAStalledRequest(t *testing.T) {
	s := New(Options{})
	srv := startHandler(t, s)
	done := make(chan int, 1)
	go func() {
		h := openaiHeaders("k")
		h[faultHeader] = "stall=0"
		resp, _, _ := postRaw(t, srv, chatPath, h, chatReq(gpt, chatMsg("user", "Hi.")))
		done <- resp.StatusCode
	}()
	waitFor(t, "the request to arrive", func() bool { return len(s.Captured()) == 1 })
	select {
	case <-done:
		t.Fatal("a stalled request was answered before Close")
	case <-time.After(50 * time.Millisecond):
	}
	s.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release the stalled request")
	}
}

func TestADripSpacesTheEvents(t *testing.T) {
	providers.CountTokens("Load the tokenizer before timing.")
	srv := startServer(t, Options{})
	tt := streamRequests()[1]
	tt.headers[faultHeader] = "drip=10ms"
	start := time.Now()
	resp, body, err := postRaw(t, srv, tt.path, tt.headers, tt.req)
	took := time.Since(start)
	events := completeEvents(body)
	if err != nil || resp.StatusCode != 200 || events[len(events)-1] != "data: [DONE]" {
		t.Fatalf("status %d, %v: %q", resp.StatusCode, err, body)
	}
	if min := time.Duration(len(events)) * 10 * time.Millisecond; took < min {
		t.Errorf("%d events in %s, faster than one per 10ms", len(events), took)
	}
}

func TestLatencyArithmetic(t *testing.T) {
	l := Latency{FirstToken: 100 * time.Millisecond, PerThousandUncached: 40 * time.Millisecond,
		TokensPerSecond: 50}
	if got := l.FirstTokenDelay(2500); got != 200*time.Millisecond {
		t.Errorf("first token after 2500 uncached tokens: %s, want 200ms", got)
	}
	if got := l.FirstTokenDelay(0); got != 100*time.Millisecond {
		t.Errorf("first token of a fully cached prompt: %s, want 100ms", got)
	}
	if got := l.OutputDelay(25); got != 500*time.Millisecond {
		t.Errorf("25 tokens at 50/s: %s, want 500ms", got)
	}
	if got := (Latency{}).OutputDelay(1000); got != 0 {
		t.Errorf("the zero latency delays output by %s", got)
	}
}

func TestLatencyDelaysAnswers(t *testing.T) {
	prompt := longText(2000) // and the tokenizer is loaded before timing
	tests := []struct {
		name    string
		latency Latency
		stream  bool
		atLeast func(uncached, output int) time.Duration
	}{
		{"the first token waits for the base", Latency{FirstToken: 80 * time.Millisecond},
			false, func(int, int) time.Duration { return 80 * time.Millisecond }},
		{"the first token waits per uncached thousand",
			Latency{PerThousandUncached: 60 * time.Millisecond}, true,
			func(u, _ int) time.Duration { return time.Duration(u) * 60 * time.Microsecond }},
		{"a streamed answer is paced", Latency{TokensPerSecond: 400}, true,
			func(_, o int) time.Duration { return time.Duration(o) * time.Second / 400 }},
		{"a whole answer waits for all its tokens", Latency{TokensPerSecond: 400}, false,
			func(_, o int) time.Duration { return time.Duration(o) * time.Second / 400 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, Options{Latency: tt.latency})
			req := chatReq(gpt, chatMsg("system", prompt), chatMsg("user", "Hi."))
			req["stream"] = tt.stream
			start := time.Now()
			resp, body, err := postRaw(t, srv, chatPath, openaiHeaders("k"), req)
			took := time.Since(start)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("status %d, %v", resp.StatusCode, err)
			}
			uncached := providers.CountTokens(prompt)
			output := outputTokens(t, body, tt.stream)
			if want := tt.atLeast(uncached, output); took < want || want <= 0 {
				t.Errorf("answered in %s, want at least %s (%d uncached, %d output)", took,
					want, uncached, output)
			}
		})
	}
}

// outputTokens returns the output tokens of a chat answer, streamed or not.
func outputTokens(t *testing.T, body []byte, stream bool) int {
	t.Helper()
	if !stream {
		var c gotChat
		if err := json.Unmarshal(body, &c); err != nil {
			t.Fatal(err)
		}
		return c.Usage.CompletionTokens
	}
	var out strings.Builder
	for _, ev := range completeEvents(body) {
		var chunk chatChunk
		if json.Unmarshal([]byte(strings.TrimPrefix(ev, "data: ")), &chunk) == nil &&
			len(chunk.Choices) > 0 && chunk.Choices[0].Delta.Content != nil {
			out.WriteString(*chunk.Choices[0].Delta.Content)
		}
	}
	return providers.CountTokens(out.String())
}
