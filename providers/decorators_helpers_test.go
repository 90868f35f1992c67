package providers_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/providers/anthropic"
	"github.com/stated-dev/stated/providers/openai"
)

// scriptedServer is a real HTTP server on loopback that answers its n-th request
// with the n-th handler of its script, and every later one with the last.
type scriptedServer struct {
	*httptest.Server
	mu       sync.Mutex
	script   []http.HandlerFunc
	requests int
}

func startScripted(t *testing.T, script ...http.HandlerFunc) *scriptedServer {
	t.Helper()
	s := &scriptedServer{script: script}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		s.mu.Lock()
		h := s.script[min(s.requests, len(s.script)-1)]
		s.requests++
		s.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// count is the number of requests the server received.
func (s *scriptedServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func (s *scriptedServer) anthropic() *anthropic.Client {
	return anthropic.New(anthropic.Config{BaseURL: s.URL, APIKey: "k", HTTPClient: s.Client()})
}

func (s *scriptedServer) openai() *openai.Client {
	return openai.New(openai.Config{BaseURL: s.URL, APIKey: "k", HTTPClient: s.Client()})
}

// stream answers 200 with an event stream, flushing after each piece; a piece
// "<wait>" waits 300ms instead.
func stream(pieces ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("content-type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		for _, p := range pieces {
			if p == "<wait>" {
				time.Sleep(300 * time.Millisecond)
				continue
			}
			_, _ = io.WriteString(w, p)
			w.(http.Flusher).Flush()
		}
	}
}

// status answers with an HTTP error status, a JSON body and header pairs.
func status(code int, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("content-type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

// stall answers nothing until the client gives up.
func stall(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

func sse(event, data string) string { return "event: " + event + "\ndata: " + data + "\n\n" }

// Anthropic stream pieces: the start of an answer, one text delta, the end.
var (
	aStart = sse("message_start", `{"type":"message_start","message":{"id":"msg_1",`+
		`"model":"claude-sonnet-4-5-20250929","usage":{"input_tokens":12,"output_tokens":1}}}`) +
		sse("content_block_start", `{"type":"content_block_start","index":0,`+
			`"content_block":{"type":"text","text":""}}`)
	aDelta = sse("content_block_delta", `{"type":"content_block_delta","index":0,`+
		`"delta":{"type":"text_delta","text":"Hi"}}`)
	aEnd = sse("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn"},`+
		`"usage":{"output_tokens":3}}`) + sse("message_stop", `{"type":"message_stop"}`)
	aAnswer = stream(aStart, aDelta, aEnd)
)

func anthropicError(code int, typ string, header ...string) http.HandlerFunc {
	return status(code, `{"type":"error","error":{"type":"`+typ+`","message":"m"}}`, header...)
}

// OpenAI Chat Completions answer "Hi" from gpt-4.1-2025-04-14.
var oAnswer = stream(
	`data: {"model":"gpt-4.1-2025-04-14","choices":[{"index":0,"delta":{"content":"Hi"}}]}`+
		"\n\n",
	`data: {"model":"gpt-4.1-2025-04-14","choices":[{"index":0,"delta":{},`+
		`"finish_reason":"stop"}]}`+"\n\n",
	`data: {"model":"gpt-4.1-2025-04-14","choices":[],"usage":{"prompt_tokens":12,`+
		`"completion_tokens":3}}`+"\n\n",
	"data: [DONE]\n\n")

// fakeClock records the delays a Retrier asks to sleep and returns at once.
type fakeClock struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.delays = append(c.delays, d)
	c.mu.Unlock()
	return ctx.Err()
}

func (c *fakeClock) slept() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.delays...)
}

// policy is a retry policy with a fake clock, no jitter (the shortest delay of
// each range) and a log written to buf.
func policy(clock *fakeClock, buf *bytes.Buffer) providers.RetryPolicy {
	return providers.RetryPolicy{
		Attempts:  3,
		BaseDelay: 100 * time.Millisecond,
		MaxDelay:  10 * time.Second,
		Logger:    slog.New(slog.NewTextHandler(buf, nil)),
		Sleep:     clock.sleep,
		Jitter:    func() float64 { return 0 },
	}
}

func hello(model string) *providers.Request {
	return &providers.Request{Model: model, MaxTokens: 64,
		Messages: []providers.Message{{Role: providers.RoleUser, Text: "hello"}}}
}

// deltaText concatenates the text deltas it is given.
type deltaText struct{ bytes.Buffer }

func (d *deltaText) add(x providers.Delta) { d.WriteString(x.Text) }
