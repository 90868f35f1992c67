package sim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stated-dev/stated/providers"
)

// dataDir returns the shared test data directory, skipping the test when absent.
func dataDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "shared", "data")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("test data not found at %s", dir)
	}
	return dir
}

// startServer starts a simulator on a loopback httptest server.
func startServer(t testing.TB, opts Options) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(New(opts))
	t.Cleanup(srv.Close)
	return srv
}

// longText returns deterministic prose of at least n tokens.
func longText(n int) string {
	var b strings.Builder
	for i, counted := 0, 0; counted < n; i++ {
		sentence := fmt.Sprintf("Rule %d: the assistant keeps answers short, cites the "+
			"relevant policy section and never invents order numbers. ", i)
		b.WriteString(sentence)
		counted += providers.CountTokens(sentence)
		if counted >= n {
			counted = providers.CountTokens(b.String())
		}
	}
	return b.String()
}

// post sends body as JSON to path with the given headers and returns the
// response with its body read.
func post(t testing.TB, srv *httptest.Server, path string, headers map[string]string,
	body any) (*http.Response, []byte) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatalf("marshal request: %v", err)
	}
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("post %s: %v", path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return resp, out
}

func anthropicHeaders(key string) map[string]string {
	return map[string]string{"x-api-key": key, "anthropic-version": "2023-06-01"}
}

func openaiHeaders(key string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + key}
}

// Decoded Messages API answers, as a client sees them.
type (
	gotUsage struct {
		InputTokens              int `json:"input_tokens"`
		CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
		CacheReadInputTokens     int `json:"cache_read_input_tokens"`
		CacheCreation            struct {
			Ephemeral5m int `json:"ephemeral_5m_input_tokens"`
			Ephemeral1h int `json:"ephemeral_1h_input_tokens"`
		} `json:"cache_creation"`
		OutputTokens int `json:"output_tokens"`
	}
	gotBlock struct {
		Type  string          `json:"type"`
		Text  string          `json:"text"`
		ID    string          `json:"id"`
		Name  string          `json:"name"`
		Input json.RawMessage `json:"input"`
	}
	gotMessage struct {
		Type       string     `json:"type"`
		Role       string     `json:"role"`
		Model      string     `json:"model"`
		Content    []gotBlock `json:"content"`
		StopReason string     `json:"stop_reason"`
		Usage      gotUsage   `json:"usage"`
	}
)

func (u gotUsage) prompt() int {
	return u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens
}

func (m gotMessage) text() string {
	var b strings.Builder
	for _, c := range m.Content {
		b.WriteString(c.Text)
	}
	return b.String()
}

// sendMessages posts a non-streamed Messages request and decodes the Message,
// failing the test unless the status is 200.
func sendMessages(t testing.TB, srv *httptest.Server, key string, req map[string]any) gotMessage {
	t.Helper()
	resp, body := post(t, srv, "/v1/messages", anthropicHeaders(key), req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var m gotMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("decode message: %v", err)
	}
	return m
}

// sseEvent is one server-sent event.
type sseEvent struct {
	name string
	data string
}

// parseSSE splits an event stream into events.
func parseSSE(t testing.TB, body []byte) []sseEvent {
	t.Helper()
	var events []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.data != "" {
				events = append(events, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.data = strings.TrimPrefix(line, "data: ")
		default:
			t.Fatalf("unexpected stream line %q", line)
		}
	}
	if cur.data != "" {
		t.Fatalf("stream ended inside an event: %+v", cur)
	}
	return events
}

// streamMessages posts a streamed Messages request and assembles the Message
// from its events, checking the order of the events as it goes.
func streamMessages(t testing.TB, srv *httptest.Server, key string,
	req map[string]any) gotMessage {
	t.Helper()
	streamed := map[string]any{"stream": true}
	for k, v := range req {
		streamed[k] = v
	}
	resp, body := post(t, srv, "/v1/messages", anthropicHeaders(key), streamed)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("content type %q", ct)
	}
	return assembleMessage(t, parseSSE(t, body))
}

// streamEvent is one decoded Messages stream event.
type streamEvent struct {
	Type         string          `json:"type"`
	Index        int             `json:"index"`
	Message      gotMessage      `json:"message"`
	ContentBlock gotBlock        `json:"content_block"`
	Delta        json.RawMessage `json:"delta"`
	Usage        gotUsage        `json:"usage"`
}

// assembleMessage rebuilds a Message from its stream events, checking their
// order: message_start first, blocks started in index order, message_stop last.
func assembleMessage(t testing.TB, events []sseEvent) gotMessage {
	t.Helper()
	var m gotMessage
	var partial []string // the partial_json of each block so far
	for i, ev := range events {
		var e streamEvent
		if err := json.Unmarshal([]byte(ev.data), &e); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if e.Type != ev.name {
			t.Fatalf("event %d named %q carries type %q", i, ev.name, e.Type)
		}
		switch e.Type {
		case "message_start":
			if i != 0 || e.Message.Usage.OutputTokens != 1 {
				t.Fatalf("message_start at %d with output_tokens %d", i,
					e.Message.Usage.OutputTokens)
			}
			m = e.Message
		case "content_block_start":
			if e.Index != len(m.Content) {
				t.Fatalf("block %d starts at index %d", len(m.Content), e.Index)
			}
			m.Content = append(m.Content, e.ContentBlock)
			partial = append(partial, "")
		case "content_block_delta":
			applyDelta(t, &m, partial, e)
		case "content_block_stop":
			if m.Content[e.Index].Type == "tool_use" {
				m.Content[e.Index].Input = json.RawMessage(partial[e.Index])
			}
		case "message_delta":
			var d struct {
				StopReason string `json:"stop_reason"`
			}
			if err := json.Unmarshal(e.Delta, &d); err != nil {
				t.Fatalf("message_delta: %v", err)
			}
			m.StopReason = d.StopReason
			m.Usage.OutputTokens = e.Usage.OutputTokens
		case "message_stop":
			if i != len(events)-1 {
				t.Fatalf("message_stop at %d of %d", i, len(events))
			}
			return m
		case "ping":
		default:
			t.Fatalf("event type %q", e.Type)
		}
	}
	t.Fatalf("stream ended without message_stop")
	return m
}

// applyDelta adds a content_block_delta to the block it belongs to.
func applyDelta(t testing.TB, m *gotMessage, partial []string, e streamEvent) {
	t.Helper()
	var d map[string]string
	if err := json.Unmarshal(e.Delta, &d); err != nil {
		t.Fatalf("delta: %v", err)
	}
	switch d["type"] {
	case "text_delta":
		m.Content[e.Index].Text += d["text"]
	case "input_json_delta":
		partial[e.Index] += d["partial_json"]
	default:
		t.Fatalf("delta type %q", d["type"])
	}
}

// Request builders for the Messages API.

func text(s string) map[string]any { return map[string]any{"type": "text", "text": s} }

// marked returns block with a 5 minute breakpoint, or with the given ttl.
func marked(block map[string]any, ttl ...string) map[string]any {
	cc := map[string]any{"type": "ephemeral"}
	if len(ttl) > 0 {
		cc["ttl"] = ttl[0]
	}
	out := map[string]any{"cache_control": cc}
	for k, v := range block {
		out[k] = v
	}
	return out
}

func msg(role string, blocks ...map[string]any) map[string]any {
	return map[string]any{"role": role, "content": blocks}
}

func messagesReq(model string, system []map[string]any, msgs ...map[string]any) map[string]any {
	req := map[string]any{"model": model, "max_tokens": 256, "messages": msgs}
	if system != nil {
		req["system"] = system
	}
	return req
}

// Decoded Chat Completions answers.
type (
	gotChatUsage struct {
		PromptTokens        int `json:"prompt_tokens"`
		CompletionTokens    int `json:"completion_tokens"`
		TotalTokens         int `json:"total_tokens"`
		PromptTokensDetails struct {
			CachedTokens int `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
	}
	gotChatCall struct {
		Index    int    `json:"index"`
		ID       string `json:"id"`
		Type     string `json:"type"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	}
	gotChat struct {
		Object  string `json:"object"`
		Choices []struct {
			Message struct {
				Role      string        `json:"role"`
				Content   *string       `json:"content"`
				ToolCalls []gotChatCall `json:"tool_calls"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage gotChatUsage `json:"usage"`
	}
)

func sendChat(t testing.TB, srv *httptest.Server, key string, req map[string]any) gotChat {
	t.Helper()
	resp, body := post(t, srv, "/v1/chat/completions", openaiHeaders(key), req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var c gotChat
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatalf("decode completion: %v", err)
	}
	if c.Object != "chat.completion" || len(c.Choices) != 1 {
		t.Fatalf("completion object %q with %d choices", c.Object, len(c.Choices))
	}
	return c
}

func chatMsg(role, content string) map[string]any {
	return map[string]any{"role": role, "content": content}
}

func chatReq(model string, msgs ...map[string]any) map[string]any {
	return map[string]any{"model": model, "messages": msgs}
}

// firstConversation returns the first conversation of a data file.
func firstConversation(t testing.TB, path string) recordedConversation {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, MaxRepliesLine)
	if !sc.Scan() {
		t.Fatalf("%s is empty", path)
	}
	var c recordedConversation
	if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return c
}

// postRaw sends body as JSON to path and returns the response with as much of
// its body as arrived and the error that ended reading it, if any.
func postRaw(t testing.TB, srv *httptest.Server, path string, headers map[string]string,
	body any) (*http.Response, []byte, error) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatalf("marshal request: %v", err)
	}
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("post %s: %v", path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp, out, err
}

// startHandler serves s on a loopback httptest server, closing both at the end
// of the test.
func startHandler(t testing.TB, s *Server) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(func() {
		s.Close()
		srv.Close()
	})
	return srv
}

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// get sends a request without a body and returns the response with its body.
func get(t testing.TB, srv *httptest.Server, method, path string) (*http.Response, []byte) {
	t.Helper()
	return do(t, srv, method, path, "")
}

// do sends a request with a raw body and returns the response with its body.
func do(t testing.TB, srv *httptest.Server, method, path, body string) (*http.Response,
	[]byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, out
}
