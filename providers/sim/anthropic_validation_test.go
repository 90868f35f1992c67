package sim

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

func TestMessagesRejectsInvalidRequests(t *testing.T) {
	toolUse := map[string]any{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
		"input": map[string]any{"city": "Oslo"}}
	result := func(id string) map[string]any {
		return map[string]any{"type": "tool_result", "tool_use_id": id, "content": "3°C"}
	}
	without := func(field string) map[string]any {
		req := messagesReq(sonnet, nil, msg("user", text("Hi.")))
		delete(req, field)
		return req
	}
	tests := []struct {
		name    string
		req     map[string]any
		wantMsg string
	}{
		{"a request without a model", without("model"), "model: Field required"},
		{"a request without max_tokens", without("max_tokens"), "max_tokens: Field required"},
		{"a request without messages", without("messages"), "messages: Field required"},
		{"an empty text block", messagesReq(sonnet, nil, msg("user", text(""), text("x"))),
			"messages.0.content.0.text: text content blocks must be non-empty"},
		{"an empty system text block", messagesReq(sonnet, []map[string]any{text("")},
			msg("user", text("Hi."))),
			"system.0.text: text content blocks must be non-empty"},
		{"a first message from the assistant", messagesReq(sonnet, nil,
			msg("assistant", text("Hello.")), msg("user", text("Hi."))),
			`messages: first message must use the "user" role`},
		{"two user messages in a row", messagesReq(sonnet, nil,
			msg("user", text("Hi.")), msg("user", text("Hello?"))),
			`messages: roles must alternate between "user" and "assistant", but found ` +
				`multiple "user" roles in a row`},
		{"a tool_result for an unknown tool_use", messagesReq(sonnet, nil,
			msg("user", text("Weather?")), msg("assistant", toolUse),
			msg("user", result("toolu_1"), result("toolu_9"))),
			"messages.2.content.1: unexpected `tool_use_id` found in `tool_result` blocks: " +
				"toolu_9. Each `tool_result` block must have a corresponding `tool_use` " +
				"block in the previous message."},
		{"a tool_use without its tool_result", messagesReq(sonnet, nil,
			msg("user", text("Weather?")), msg("assistant", toolUse),
			msg("user", text("Never mind."))),
			"messages.1: `tool_use` ids were found without `tool_result` blocks " +
				"immediately after: toolu_1. Each `tool_use` block must have a " +
				"corresponding `tool_result` block in the next message."},
		{"a 1h breakpoint after a 5m one", messagesReq(sonnet,
			[]map[string]any{marked(text("a"))}, msg("user", marked(text("b"), "1h"))),
			"a ttl='1h' cache_control block must not come after a ttl='5m' cache_control " +
				"block. Note that blocks are processed in the following order: `tools`, " +
				"`system`, `messages`."},
	}
	srv := startServer(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(t, srv, "/v1/messages", anthropicHeaders("k"), tt.req)
			wantAnthropicError(t, resp, body, http.StatusBadRequest, "invalid_request_error",
				tt.wantMsg)
		})
	}
}

func TestMessagesAcceptsAnsweredToolUse(t *testing.T) {
	srv := startServer(t, Options{})
	req := messagesReq(sonnet, nil, msg("user", text("Weather?")),
		msg("assistant", text("Checking."), map[string]any{"type": "tool_use",
			"id": "toolu_1", "name": "get_weather", "input": map[string]any{"city": "Oslo"}}),
		msg("user", map[string]any{"type": "tool_result", "tool_use_id": "toolu_1",
			"content": []map[string]any{text("3°C")}}))
	m := sendMessages(t, srv, "k", withTools(req, weatherTool()))
	if m.text() == "" {
		t.Errorf("empty answer: %+v", m)
	}
}

func TestMessagesRequiresAnAPIKey(t *testing.T) {
	srv := startServer(t, Options{})
	req := messagesReq(sonnet, nil, msg("user", text("Hi.")))
	resp, body := post(t, srv, "/v1/messages", map[string]string{
		"anthropic-version": "2023-06-01"}, req)
	wantAnthropicError(t, resp, body, http.StatusUnauthorized, "authentication_error",
		"x-api-key header is required")
}

func TestBodiesOverTheLimitGet413(t *testing.T) {
	srv := startServer(t, Options{MaxBodyBytes: 2048})
	big := strings.Repeat("word ", 1000)
	tests := []struct {
		name    string
		path    string
		headers map[string]string
		req     map[string]any
		want    string
	}{
		{"messages", "/v1/messages", anthropicHeaders("k"),
			messagesReq(sonnet, nil, msg("user", text(big))),
			`{"type":"error","error":{"type":"request_too_large","message":"Request ` +
				`exceeds the maximum allowed number of bytes."}}`},
		{"chat completions", "/v1/chat/completions", openaiHeaders("k"),
			chatReq("gpt-4o", chatMsg("user", big)),
			`{"error":{"message":"Request body too large.","type":"invalid_request_error",` +
				`"param":null,"code":null}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(t, srv, tt.path, tt.headers, tt.req)
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if got := string(bytes.TrimSpace(body)); got != tt.want {
				t.Errorf("body %s, want %s", got, tt.want)
			}
		})
	}
}

func TestTheCacheEvictsTheLeastRecentlyUsedEntry(t *testing.T) {
	sys1, sys2 := longText(1100), longText(1100)+" Second prompt."
	req := func(system string) map[string]any {
		return messagesReq(sonnet, []map[string]any{marked(text(system))},
			msg("user", text("Hi.")))
	}
	tests := []struct {
		name       string
		maxEntries int
		wantRead   bool
	}{
		{"a full cache evicts the oldest entry", 1, false},
		{"a cache with room keeps it", 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, Options{MaxCacheEntries: tt.maxEntries})
			sendMessages(t, srv, "k", req(sys1))
			sendMessages(t, srv, "k", req(sys2))
			m := sendMessages(t, srv, "k", req(sys1))
			if got := m.Usage.CacheReadInputTokens > 0; got != tt.wantRead {
				t.Errorf("read %d tokens, want a read: %v", m.Usage.CacheReadInputTokens,
					tt.wantRead)
			}
		})
	}
}

func TestUnknownPathsAndMethods(t *testing.T) {
	srv := startServer(t, Options{})
	tests := []struct {
		name    string
		method  string
		path    string
		headers map[string]string
		status  int
		want    string
	}{
		{"an unknown path with anthropic headers", http.MethodPost, "/v1/complete",
			anthropicHeaders("k"), http.StatusNotFound,
			`{"type":"error","error":{"type":"not_found_error","message":"Not Found"}}`},
		{"an unknown path with openai headers", http.MethodPost, "/v1/embeddings",
			openaiHeaders("k"), http.StatusNotFound,
			`{"error":{"message":"Not Found","type":"not_found_error","param":null,` +
				`"code":null}}`},
		{"a GET of messages", http.MethodGet, "/v1/messages", anthropicHeaders("k"),
			http.StatusMethodNotAllowed, `{"type":"error","error":{"type":` +
				`"invalid_request_error","message":"Method GET not allowed"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body := new(bytes.Buffer)
			if _, err := body.ReadFrom(resp.Body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status || strings.TrimSpace(body.String()) != tt.want {
				t.Errorf("%d %s, want %d %s", resp.StatusCode, body, tt.status, tt.want)
			}
		})
	}
}
