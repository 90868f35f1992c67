package sim

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const gpt = "gpt-4.1-2025-04-14"

func TestChatShortPromptsAreNotCached(t *testing.T) {
	srv := startServer(t, Options{})
	req := chatReq(gpt, chatMsg("system", longText(900)), chatMsg("user", "Hi."))
	for _, step := range []string{"first", "second"} {
		c := sendChat(t, srv, "k", req)
		if c.Usage.PromptTokens >= 1024 {
			t.Fatalf("prompt of %d tokens is not short", c.Usage.PromptTokens)
		}
		if c.Usage.PromptTokensDetails.CachedTokens != 0 {
			t.Errorf("%s request: cached_tokens = %d, want 0", step,
				c.Usage.PromptTokensDetails.CachedTokens)
		}
	}
}

func TestChatCachesThePrefixInSteps(t *testing.T) {
	srv := startServer(t, Options{})
	system := longText(2000)
	first := chatReq(gpt, chatMsg("system", system), chatMsg("user", "Hi."))

	c := sendChat(t, srv, "k", first)
	prompt := c.Usage.PromptTokens
	if c.Usage.PromptTokensDetails.CachedTokens != 0 {
		t.Errorf("first request: cached_tokens = %d, want 0",
			c.Usage.PromptTokensDetails.CachedTokens)
	}
	if c.Usage.TotalTokens != prompt+c.Usage.CompletionTokens {
		t.Errorf("total_tokens %d is not prompt %d + completion %d", c.Usage.TotalTokens,
			prompt, c.Usage.CompletionTokens)
	}

	c = sendChat(t, srv, "k", first)
	if want := prompt / 128 * 128; c.Usage.PromptTokensDetails.CachedTokens != want {
		t.Errorf("identical request: cached_tokens = %d, want %d of %d",
			c.Usage.PromptTokensDetails.CachedTokens, want, prompt)
	}

	longer := chatReq(gpt, chatMsg("system", system), chatMsg("user", "Hi."),
		chatMsg("assistant", "Hello."), chatMsg("user", strings.Repeat("More text. ", 300)))
	c = sendChat(t, srv, "k", longer)
	cached := c.Usage.PromptTokensDetails.CachedTokens
	if cached%128 != 0 || cached > prompt || cached < prompt-128-chunkMax {
		t.Errorf("extended request: cached_tokens = %d, want a multiple of 128 just under "+
			"the shared prefix of about %d", cached, prompt)
	}
}

func TestChatCacheNamespaces(t *testing.T) {
	system := longText(1500)
	req := func(cacheKey string) map[string]any {
		r := chatReq(gpt, chatMsg("system", system), chatMsg("user", "Hi."))
		if cacheKey != "" {
			r["prompt_cache_key"] = cacheKey
		}
		return r
	}
	tests := []struct {
		name       string
		key        string
		cacheKey   string
		wantCached bool
	}{
		{"the same key and prompt_cache_key hit", "k", "session-1", true},
		{"another prompt_cache_key misses", "k", "session-2", false},
		{"no prompt_cache_key misses", "k", "", false},
		{"another API key misses", "other", "session-1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, Options{})
			sendChat(t, srv, "k", req("session-1"))
			c := sendChat(t, srv, tt.key, req(tt.cacheKey))
			if got := c.Usage.PromptTokensDetails.CachedTokens > 0; got != tt.wantCached {
				t.Errorf("cached_tokens = %d, want a hit: %v",
					c.Usage.PromptTokensDetails.CachedTokens, tt.wantCached)
			}
		})
	}
}

func TestChatCacheEntriesExpireAfterTenIdleMinutes(t *testing.T) {
	tests := []struct {
		name       string
		waits      []time.Duration
		wantCached bool
	}{
		{"a reuse within 9m59s hits", []time.Duration{9*time.Minute + 59*time.Second}, true},
		{"use refreshes the entry", []time.Duration{9 * time.Minute, 9 * time.Minute}, true},
		{"10m01s of idleness misses", []time.Duration{10*time.Minute + time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := NewManualClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
			srv := startServer(t, Options{Clock: clock})
			req := chatReq(gpt, chatMsg("system", longText(1500)), chatMsg("user", "Hi."))
			sendChat(t, srv, "k", req)
			var c gotChat
			for _, wait := range tt.waits {
				clock.Advance(wait)
				c = sendChat(t, srv, "k", req)
			}
			if got := c.Usage.PromptTokensDetails.CachedTokens > 0; got != tt.wantCached {
				t.Errorf("cached_tokens = %d, want a hit: %v",
					c.Usage.PromptTokensDetails.CachedTokens, tt.wantCached)
			}
		})
	}
}

// chatChunk is one decoded chat.completion.chunk with its raw fields.
type chatChunk struct {
	raw     map[string]json.RawMessage
	Object  string `json:"object"`
	Choices []struct {
		Delta struct {
			Role      string        `json:"role"`
			Content   *string       `json:"content"`
			ToolCalls []gotChatCall `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *gotChatUsage `json:"usage"`
}

// streamChatChunks decodes the chunks of the stream that post returns; it checks
// that the stream ends with [DONE].
func streamChatChunks(t *testing.T, post func() []byte) []chatChunk {
	t.Helper()
	events := parseSSE(t, post())
	if len(events) == 0 || events[len(events)-1].data != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %+v", events)
	}
	var chunks []chatChunk
	for _, ev := range events[:len(events)-1] {
		var c chatChunk
		if err := json.Unmarshal([]byte(ev.data), &c); err != nil {
			t.Fatalf("chunk %s: %v", ev.data, err)
		}
		if err := json.Unmarshal([]byte(ev.data), &c.raw); err != nil {
			t.Fatalf("chunk %s: %v", ev.data, err)
		}
		if c.Object != "chat.completion.chunk" {
			t.Fatalf("chunk object %q", c.Object)
		}
		chunks = append(chunks, c)
	}
	return chunks
}

func TestChatStreamReassemblesRecordedToolCalls(t *testing.T) {
	path := filepath.Join(dataDir(t), "conversations", "glaive-tools-en.jsonl")
	replies, err := LoadReplies(path)
	if err != nil {
		t.Fatalf("load replies: %v", err)
	}
	conv := firstConversation(t, path)
	srv := startServer(t, Options{Replies: replies})
	req := map[string]any{"model": gpt, "messages": conv.Messages[:3], "stream": true,
		"tools": json.RawMessage(conv.Tools)}

	chunks := streamChatChunks(t, func() []byte {
		resp, body := post(t, srv, "/v1/chat/completions", openaiHeaders("k"), req)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		return body
	})
	if chunks[0].Choices[0].Delta.Role != "assistant" {
		t.Errorf("first delta has role %q", chunks[0].Choices[0].Delta.Role)
	}
	var calls []gotChatCall
	fragments := 0
	for _, c := range chunks {
		for _, tc := range c.Choices[0].Delta.ToolCalls {
			fragments++
			if tc.Index == len(calls) {
				calls = append(calls, tc)
				continue
			}
			if tc.ID != "" || tc.Function.Name != "" {
				t.Errorf("a later fragment repeats the id or name: %+v", tc)
			}
			calls[tc.Index].Function.Arguments += tc.Function.Arguments
		}
	}
	want := conv.Messages[3].ToolCalls
	if len(calls) != len(want) || fragments < 3 {
		t.Fatalf("%d calls in %d fragments, want %d calls in several", len(calls),
			fragments, len(want))
	}
	for i, w := range want {
		got := calls[i]
		if got.ID != w.ID || got.Type != "function" || got.Function.Name != w.Function.Name ||
			got.Function.Arguments != w.Function.Arguments {
			t.Errorf("call %d: %+v, want %+v", i, got, w)
		}
	}
	last := chunks[len(chunks)-1].Choices[0].FinishReason
	if last == nil || *last != "tool_calls" {
		t.Errorf("finish_reason %v, want tool_calls", last)
	}
}

func TestChatStreamUsageChunk(t *testing.T) {
	tests := []struct {
		name      string
		options   any
		wantUsage bool
	}{
		{"include_usage adds a usage chunk", map[string]any{"include_usage": true}, true},
		{"include_usage false adds none", map[string]any{"include_usage": false}, false},
		{"no stream_options adds none", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, Options{})
			req := chatReq(gpt, chatMsg("user", "Tell me about caching."))
			whole := sendChat(t, srv, "k", req)
			req["stream"] = true
			if tt.options != nil {
				req["stream_options"] = tt.options
			}
			chunks := streamChatChunks(t, func() []byte {
				_, body := post(t, srv, "/v1/chat/completions", openaiHeaders("k"), req)
				return body
			})
			var content strings.Builder
			usageChunks := 0
			for i, c := range chunks {
				_, hasUsage := c.raw["usage"]
				if hasUsage != tt.wantUsage {
					t.Errorf("chunk %d has a usage field: %v", i, hasUsage)
				}
				if c.Usage != nil {
					usageChunks++
					if i != len(chunks)-1 || len(c.Choices) != 0 {
						t.Errorf("usage in chunk %d of %d with %d choices", i, len(chunks),
							len(c.Choices))
					}
					if *c.Usage != whole.Usage {
						t.Errorf("stream usage %+v, completion usage %+v", *c.Usage,
							whole.Usage)
					}
					continue
				}
				if d := c.Choices[0].Delta.Content; d != nil {
					content.WriteString(*d)
				}
			}
			if wantChunks := map[bool]int{true: 1, false: 0}[tt.wantUsage]; usageChunks !=
				wantChunks {
				t.Errorf("%d usage chunks, want %d", usageChunks, wantChunks)
			}
			if content.String() != *whole.Choices[0].Message.Content {
				t.Errorf("streamed %q, completion %q", content.String(),
					*whole.Choices[0].Message.Content)
			}
		})
	}
}

func TestChatRejectsBadRequests(t *testing.T) {
	call := map[string]any{"role": "assistant", "content": nil, "tool_calls": []any{
		map[string]any{"id": "call_1", "type": "function",
			"function": map[string]any{"name": "f", "arguments": "{}"}}}}
	toolMsg := func(id string) map[string]any {
		return map[string]any{"role": "tool", "tool_call_id": id, "content": "ok"}
	}
	tests := []struct {
		name      string
		headers   map[string]string
		req       map[string]any
		status    int
		wantError string
	}{
		{"a request without an API key", map[string]string{},
			chatReq(gpt, chatMsg("user", "Hi.")), http.StatusUnauthorized,
			`{"message":"You didn't provide an API key. You need to provide your API key ` +
				`in an Authorization header using Bearer auth (i.e. Authorization: Bearer ` +
				`YOUR_KEY).","type":"invalid_request_error","param":null,` +
				`"code":"invalid_api_key"}`},
		{"a tool message without a tool call", openaiHeaders("k"),
			chatReq(gpt, chatMsg("user", "Hi."), toolMsg("call_1")), http.StatusBadRequest,
			`{"message":"Invalid parameter: messages with role 'tool' must be a response ` +
				`to a preceeding message with 'tool_calls'.","type":"invalid_request_error",` +
				`"param":"messages.[1].role","code":null}`},
		{"a tool message for another call", openaiHeaders("k"),
			chatReq(gpt, chatMsg("user", "Hi."), call, toolMsg("call_2")),
			http.StatusBadRequest,
			`{"message":"Invalid parameter: 'tool_call_id' of 'call_2' not found in ` +
				`'tool_calls' of previous message.","type":"invalid_request_error",` +
				`"param":"messages.[2].tool_call_id","code":null}`},
		{"tool calls without their tool messages", openaiHeaders("k"),
			chatReq(gpt, chatMsg("user", "Hi."), call, chatMsg("user", "Well?")),
			http.StatusBadRequest,
			`{"message":"An assistant message with 'tool_calls' must be followed by tool ` +
				`messages responding to each 'tool_call_id'. The following tool_call_ids did ` +
				`not have response messages: call_1","type":"invalid_request_error",` +
				`"param":"messages.[1].role","code":null}`},
		{"a request without a model", openaiHeaders("k"),
			map[string]any{"messages": []any{chatMsg("user", "Hi.")}},
			http.StatusBadRequest,
			`{"message":"you must provide a model parameter",` +
				`"type":"invalid_request_error","param":null,"code":null}`},
	}
	srv := startServer(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(t, srv, "/v1/chat/completions", tt.headers, tt.req)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			var e struct {
				Error json.RawMessage `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil || string(e.Error) != tt.wantError {
				t.Errorf("error %s, want %s", e.Error, tt.wantError)
			}
		})
	}
}
