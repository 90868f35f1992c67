package openai

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stated-dev/stated/providers"
)

// testServer is a real HTTP server on loopback that records every request and
// answers it with respond.
type testServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recorded
}

// recorded is one request as the server received it.
type recorded struct {
	method string
	path   string
	header http.Header
	body   []byte
}

func startServer(t *testing.T, respond http.HandlerFunc) *testServer {
	t.Helper()
	s := &testServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.requests = append(s.requests, recorded{r.Method, r.URL.Path, r.Header.Clone(), body})
		s.mu.Unlock()
		respond(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// client returns a Client of the server with cfg's other fields.
func (s *testServer) client(cfg Config) *Client {
	cfg.BaseURL = s.URL
	cfg.APIKey = "sk-test-key"
	cfg.HTTPClient = s.Client()
	return New(cfg)
}

func (s *testServer) recorded() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.requests...)
}

// streamPieces answers with the stream cut into pieces, flushing after each one so
// that the client reads them apart.
func streamPieces(pieces ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("content-type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		for _, p := range pieces {
			_, _ = io.WriteString(w, p)
			w.(http.Flusher).Flush()
		}
	}
}

// retryDate as a header value in errorStatus stands for the HTTP date 90 seconds
// after the request.
const retryDate = "<date in 90s>"

// errorStatus answers with an HTTP error status, a body and extra headers.
func errorStatus(status int, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			v := header[i+1]
			if v == retryDate {
				v = time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
			}
			w.Header().Set(header[i], v)
		}
		w.Header().Set("content-type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// chunkEvent is one chat.completion.chunk event carrying choices and usage (JSON
// texts), in the wire format of the API.
func chunkEvent(choices, usage string) string {
	return "data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\"," +
		"\"created\":1700000000,\"model\":\"gpt-4o-mini-2024-07-18\"," +
		"\"system_fingerprint\":\"fp_44709d6fcb\",\"choices\":" + choices +
		",\"usage\":" + usage + "}\n\n"
}

// deltaChunk is a chunk whose only choice has delta and finish reason finish
// (JSON texts).
func deltaChunk(delta, finish string) string {
	return chunkEvent(`[{"index":0,"delta":`+delta+`,"logprobs":null,"finish_reason":`+
		finish+`}]`, "null")
}

const doneEvent = "data: [DONE]\n\n"

// deltaLog records the deltas of one call, without their read times (At), which
// differ from run to run; it counts the deltas that had none.
type deltaLog struct {
	deltas    []providers.Delta
	unstamped int
}

func (l *deltaLog) add(d providers.Delta) {
	if d.At.IsZero() {
		l.unstamped++
	}
	d.At = time.Time{}
	l.deltas = append(l.deltas, d)
}

// text is the concatenation of the text deltas.
func (l *deltaLog) text() string {
	var b strings.Builder
	for _, d := range l.deltas {
		if d.Kind == providers.DeltaText {
			b.WriteString(d.Text)
		}
	}
	return b.String()
}

// sharedData is the directory of shared test data, or "" if it is absent.
func sharedData(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "shared", "data")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("shared test data not found at %s", dir)
	}
	return dir
}

// chatConversation is one line of the shared OpenAI chat JSONL files.
type chatConversation struct {
	ID       string `json:"id"`
	Messages []struct {
		Role       string  `json:"role"`
		Content    *string `json:"content"`
		ToolCallID string  `json:"tool_call_id"`
		ToolCalls  []struct {
			ID       string `json:"id"`
			Function struct {
				Name      string `json:"name"`
				Arguments string `json:"arguments"`
			} `json:"function"`
		} `json:"tool_calls"`
	} `json:"messages"`
	Tools []struct {
		Function struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
		} `json:"function"`
	} `json:"tools"`
}

// loadConversations reads the first n conversations of a shared JSONL file as
// neutral requests, without a model or a cache plan.
func loadConversations(t *testing.T, file string, n int) []providers.Request {
	t.Helper()
	f, err := os.Open(filepath.Join(sharedData(t), "conversations", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []providers.Request
	lines := bufio.NewScanner(f)
	lines.Buffer(nil, 16<<20)
	for len(out) < n && lines.Scan() {
		var c chatConversation
		if err := json.Unmarshal(lines.Bytes(), &c); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		out = append(out, neutralRequest(c))
	}
	if err := lines.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func neutralRequest(c chatConversation) providers.Request {
	var req providers.Request
	for _, tool := range c.Tools {
		req.Tools = append(req.Tools, providers.Tool{
			Name:        tool.Function.Name,
			Description: tool.Function.Description,
			InputSchema: tool.Function.Parameters,
		})
	}
	for _, m := range c.Messages {
		text := ""
		if m.Content != nil {
			text = *m.Content
		}
		if m.Role == "system" {
			req.System = text
			continue
		}
		msg := providers.Message{Role: providers.Role(m.Role), Text: text, ToolCallID: m.ToolCallID}
		for _, call := range m.ToolCalls {
			msg.ToolCalls = append(msg.ToolCalls, providers.ToolCall{
				ID: call.ID, Name: call.Function.Name, Arguments: call.Function.Arguments,
			})
		}
		req.Messages = append(req.Messages, msg)
	}
	return req
}
