package sim

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stated-dev/stated/providers"
)

const sonnet = "claude-sonnet-4-5-20250929"

// wantUsage checks the three prompt fields of a Messages usage.
func wantUsage(t *testing.T, step string, got gotUsage, input, write, read int) {
	t.Helper()
	if got.InputTokens != input || got.CacheCreationInputTokens != write ||
		got.CacheReadInputTokens != read {
		t.Errorf("%s: usage input=%d write=%d read=%d, want input=%d write=%d read=%d",
			step, got.InputTokens, got.CacheCreationInputTokens, got.CacheReadInputTokens,
			input, write, read)
	}
	if got.CacheCreation.Ephemeral5m+got.CacheCreation.Ephemeral1h !=
		got.CacheCreationInputTokens {
		t.Errorf("%s: cache_creation %+v does not add up to %d", step, got.CacheCreation,
			got.CacheCreationInputTokens)
	}
}

// Token counts of blocks, as the simulator lays out an Anthropic prompt.
func systemTokens(s string) int { return providers.CountTokens(s) + blockOverhead }
func firstBlockTokens(s string) int {
	return providers.CountTokens(s) + blockOverhead + messageOverhead
}

func TestMessagesCacheWritesThenReadsThenExtends(t *testing.T) {
	srv := startServer(t, Options{})
	system := longText(1500)
	sys := []map[string]any{marked(text(system))}
	q1, a1, q2 := "What is the refund policy?", "Refunds take five days.", "And exchanges?"
	prefix := systemTokens(system)

	first := messagesReq(sonnet, sys, msg("user", text(q1)))
	m := sendMessages(t, srv, "key-a", first)
	wantUsage(t, "first request writes the system prefix", m.Usage,
		firstBlockTokens(q1), prefix, 0)
	if m.Usage.CacheCreation.Ephemeral5m != prefix {
		t.Errorf("ephemeral_5m_input_tokens = %d, want %d", m.Usage.CacheCreation.Ephemeral5m,
			prefix)
	}

	m = sendMessages(t, srv, "key-a", first)
	wantUsage(t, "identical request reads it", m.Usage, firstBlockTokens(q1), 0, prefix)

	tail := firstBlockTokens(q1) + firstBlockTokens(a1) + firstBlockTokens(q2)
	extended := messagesReq(sonnet, sys, msg("user", text(q1)), msg("assistant", text(a1)),
		msg("user", marked(text(q2))))
	m = sendMessages(t, srv, "key-a", extended)
	wantUsage(t, "extended conversation reads the old entry and writes the tail", m.Usage,
		0, tail, prefix)

	q3 := "Thanks."
	again := messagesReq(sonnet, sys, msg("user", text(q1)), msg("assistant", text(a1)),
		msg("user", text(q2)), msg("assistant", text(a1)), msg("user", marked(text(q3))))
	m = sendMessages(t, srv, "key-a", again)
	wantUsage(t, "the moved breakpoint finds the previous end of the conversation", m.Usage,
		0, firstBlockTokens(a1)+firstBlockTokens(q3), prefix+tail)
}

func TestMessagesSessionsShareTheSystemEntryOfOneKey(t *testing.T) {
	srv := startServer(t, Options{})
	system := longText(1200)
	sys := []map[string]any{marked(text(system))}
	prefix := systemTokens(system)

	m := sendMessages(t, srv, "key-a", messagesReq(sonnet, sys, msg("user", text("Hi."))))
	wantUsage(t, "session one writes", m.Usage, firstBlockTokens("Hi."), prefix, 0)

	other := messagesReq(sonnet, sys, msg("user", text("Where is my parcel?")))
	m = sendMessages(t, srv, "key-a", other)
	wantUsage(t, "session two of the same key reads", m.Usage,
		firstBlockTokens("Where is my parcel?"), 0, prefix)

	m = sendMessages(t, srv, "key-b", other)
	wantUsage(t, "another key does not read", m.Usage,
		firstBlockTokens("Where is my parcel?"), prefix, 0)

	m = sendMessages(t, srv, "key-a",
		messagesReq("claude-opus-4-1", sys, msg("user", text("Hi."))))
	wantUsage(t, "another model does not read", m.Usage, firstBlockTokens("Hi."), prefix, 0)
}

func TestMessagesBreakpointLimit(t *testing.T) {
	srv := startServer(t, Options{})
	blocks := func(n int) []map[string]any {
		var out []map[string]any
		for i := 0; i < n; i++ {
			out = append(out, marked(text("part "+itoa(i))))
		}
		return out
	}
	auto := func(req map[string]any) map[string]any {
		req["cache_control"] = map[string]any{"type": "ephemeral"}
		return req
	}
	tests := []struct {
		name    string
		req     map[string]any
		wantMsg string
	}{
		{"five block breakpoints are refused",
			messagesReq(sonnet, blocks(5), msg("user", text("Hi."))),
			"A maximum of 4 blocks with cache_control may be provided. Found 5."},
		{"four block breakpoints and the automatic one are refused",
			auto(messagesReq(sonnet, blocks(4), msg("user", text("Hi.")))),
			"A maximum of 4 blocks with cache_control may be provided. Found 5."},
		{"breakpoints in messages count too",
			messagesReq(sonnet, blocks(3), msg("user", marked(text("a")), marked(text("b")))),
			"A maximum of 4 blocks with cache_control may be provided. Found 5."},
		{"breakpoints on tools count too",
			withTools(messagesReq(sonnet, blocks(4), msg("user", text("Hi."))),
				marked(weatherTool())),
			"A maximum of 4 blocks with cache_control may be provided. Found 5."},
		{"four breakpoints are accepted",
			messagesReq(sonnet, blocks(3), msg("user", marked(text("Hi.")))), ""},
		{"three breakpoints and the automatic one are accepted",
			auto(messagesReq(sonnet, blocks(3), msg("user", text("Hi.")))), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(t, srv, "/v1/messages", anthropicHeaders("k"), tt.req)
			if tt.wantMsg == "" {
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				return
			}
			wantAnthropicError(t, resp, body, http.StatusBadRequest, "invalid_request_error",
				tt.wantMsg)
		})
	}
}

// wantAnthropicError checks an answer in the Anthropic error format.
func wantAnthropicError(t *testing.T, resp *http.Response, body []byte, status int,
	kind, message string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	var e struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("decode error: %v: %s", err, body)
	}
	if e.Type != "error" || e.Error.Type != kind || e.Error.Message != message {
		t.Errorf("error %s, want type %q message %q", body, kind, message)
	}
}

func TestMessagesPrefixUnderTheMinimumIsNotCached(t *testing.T) {
	tests := []struct {
		name      string
		model     string
		system    string
		wantWrite bool
	}{
		{"a short system prompt is not cached", sonnet, longText(300), false},
		{"haiku 4.5 needs 4096 tokens", "claude-haiku-4-5-20251001", longText(2000), false},
		{"opus 4.5 needs 4096 tokens", "claude-opus-4-5", longText(2000), false},
		{"sonnet 4.5 caches 1024 tokens", sonnet, longText(1100), true},
		{"haiku 4.5 caches 4096 tokens", "claude-haiku-4-5", longText(4200), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, Options{})
			req := messagesReq(tt.model, []map[string]any{marked(text(tt.system))},
				msg("user", text("Hi.")))
			total := systemTokens(tt.system) + firstBlockTokens("Hi.")
			for _, step := range []string{"first request", "second request"} {
				m := sendMessages(t, srv, "k", req)
				switch {
				case !tt.wantWrite:
					wantUsage(t, step, m.Usage, total, 0, 0)
				case step == "first request":
					wantUsage(t, step, m.Usage, firstBlockTokens("Hi."),
						systemTokens(tt.system), 0)
				default:
					wantUsage(t, step, m.Usage, firstBlockTokens("Hi."), 0,
						systemTokens(tt.system))
				}
			}
		})
	}
}

func TestMessagesCacheEntriesExpire(t *testing.T) {
	system := longText(1200)
	prefix := systemTokens(system)
	user := firstBlockTokens("Hi.")
	type step struct {
		wait        time.Duration
		read, write int
	}
	tests := []struct {
		name  string
		ttl   []string
		steps []step
	}{
		{"a read at 4m59s hits and refreshes the entry", nil, []step{
			{0, 0, prefix}, {4*time.Minute + 59*time.Second, prefix, 0},
			{4*time.Minute + 59*time.Second, prefix, 0}}},
		{"nothing for 5m01s misses", nil, []step{
			{0, 0, prefix}, {5*time.Minute + time.Second, 0, prefix}}},
		{"a 1h entry outlives 5 minutes", []string{"1h"}, []step{
			{0, 0, prefix}, {59 * time.Minute, prefix, 0}, {61 * time.Minute, 0, prefix}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := NewManualClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
			srv := startServer(t, Options{Clock: clock})
			req := messagesReq(sonnet, []map[string]any{marked(text(system), tt.ttl...)},
				msg("user", text("Hi.")))
			for i, s := range tt.steps {
				clock.Advance(s.wait)
				m := sendMessages(t, srv, "k", req)
				wantUsage(t, "step "+itoa(i), m.Usage, user, s.write, s.read)
				if len(tt.ttl) > 0 && m.Usage.CacheCreation.Ephemeral1h != s.write {
					t.Errorf("step %d: ephemeral_1h_input_tokens = %d, want %d", i,
						m.Usage.CacheCreation.Ephemeral1h, s.write)
				}
			}
		})
	}
}

func TestMessagesLookbackIsTwentyBlocks(t *testing.T) {
	system := longText(1200)
	var parts []string
	for i := 1; i <= 30; i++ {
		parts = append(parts, "Note "+itoa(i)+".")
	}
	// userBlocks returns the 30 user blocks with a breakpoint on block mark
	// (1-based; the system block is block 0, so mark is also the distance).
	userBlocks := func(mark int) []map[string]any {
		var out []map[string]any
		for i, p := range parts {
			if i+1 == mark {
				out = append(out, marked(text(p)))
			} else {
				out = append(out, text(p))
			}
		}
		return out
	}
	tests := []struct {
		name     string
		distance int
		wantRead bool
	}{
		{"an entry 1 block behind is found", 1, true},
		{"an entry 20 blocks behind is found", 20, true},
		{"an entry 21 blocks behind is not found", 21, false},
		{"an entry 30 blocks behind is not found", 30, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, Options{})
			write := messagesReq(sonnet, []map[string]any{marked(text(system))},
				msg("user", userBlocks(0)...))
			sendMessages(t, srv, "k", write)

			read := messagesReq(sonnet, []map[string]any{text(system)},
				msg("user", userBlocks(tt.distance)...))
			m := sendMessages(t, srv, "k", read)
			upTo := systemTokens(system) + messageOverhead
			for _, p := range parts[:tt.distance] {
				upTo += providers.CountTokens(p) + blockOverhead
			}
			total := m.Usage.prompt()
			if tt.wantRead {
				wantUsage(t, "read", m.Usage, total-upTo, upTo-systemTokens(system),
					systemTokens(system))
			} else {
				wantUsage(t, "miss", m.Usage, total-upTo, upTo, 0)
			}
		})
	}
}

func TestMessagesUsageFieldsAreDisjointAndSumToThePrompt(t *testing.T) {
	system := longText(1300)
	convo := func(mark bool) map[string]any {
		last := text("Which plan fits a team of five?")
		sys := text(system)
		if mark {
			last, sys = marked(last), marked(sys, "1h")
		}
		return messagesReq(sonnet, []map[string]any{sys},
			msg("user", text("Hello.")), msg("assistant", text("Hi, how can I help?")),
			msg("user", last))
	}
	plain := sendMessages(t, startServer(t, Options{}), "k", convo(false))
	if plain.Usage.CacheCreationInputTokens != 0 || plain.Usage.CacheReadInputTokens != 0 {
		t.Fatalf("a request without breakpoints used the cache: %+v", plain.Usage)
	}
	total := plain.Usage.InputTokens

	srv := startServer(t, Options{})
	for _, step := range []string{"write", "read"} {
		m := sendMessages(t, srv, "k", convo(true))
		if m.Usage.prompt() != total {
			t.Errorf("%s: input %d + write %d + read %d = %d, want the prompt's %d", step,
				m.Usage.InputTokens, m.Usage.CacheCreationInputTokens,
				m.Usage.CacheReadInputTokens, m.Usage.prompt(), total)
		}
		if step == "write" && (m.Usage.CacheCreation.Ephemeral1h != systemTokens(system) ||
			m.Usage.CacheCreation.Ephemeral5m != total-systemTokens(system)) {
			t.Errorf("write: cache_creation %+v, want 1h=%d 5m=%d", m.Usage.CacheCreation,
				systemTokens(system), total-systemTokens(system))
		}
	}
}

func TestMessagesStreamMatchesTheMessage(t *testing.T) {
	dir := dataDir(t)
	replies, err := LoadReplies(filepath.Join(dir, "conversations", "glaive-tools-en.jsonl"))
	if err != nil {
		t.Fatalf("load replies: %v", err)
	}
	conv := firstConversation(t, filepath.Join(dir, "conversations", "glaive-tools-en.jsonl"))
	system := []map[string]any{marked(text(longText(1100)))}
	tests := []struct {
		name string
		req  map[string]any
	}{
		{"generated text", messagesReq(sonnet, system, msg("user", text("Tell me more.")))},
		{"a recorded tool call", messagesReq(sonnet, system, recordedPrefix(t, conv, 3)...)},
		{"recorded text", messagesReq(sonnet, system, recordedPrefix(t, conv, 1)...)},
		{"text cut by max_tokens", withMaxTokens(
			messagesReq(sonnet, system, msg("user", text("Go on."))), 7)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := Options{Replies: replies}
			whole := sendMessages(t, startServer(t, opts), "k", tt.req)
			streamed := streamMessages(t, startServer(t, opts), "k", tt.req)
			if !reflect.DeepEqual(whole.Usage, streamed.Usage) {
				t.Errorf("usage: message %+v, stream %+v", whole.Usage, streamed.Usage)
			}
			if whole.StopReason != streamed.StopReason {
				t.Errorf("stop_reason: message %q, stream %q", whole.StopReason,
					streamed.StopReason)
			}
			if len(whole.Content) != len(streamed.Content) {
				t.Fatalf("content: message %+v, stream %+v", whole.Content, streamed.Content)
			}
			for i := range whole.Content {
				w, s := whole.Content[i], streamed.Content[i]
				if w.Type != s.Type || w.Text != s.Text || w.ID != s.ID || w.Name != s.Name ||
					!jsonEqual(t, w.Input, s.Input) {
					t.Errorf("block %d: message %+v, stream %+v", i, w, s)
				}
			}
		})
	}
}

func weatherTool() map[string]any {
	return map[string]any{"name": "get_weather", "description": "Weather of a city.",
		"input_schema": map[string]any{"type": "object",
			"properties": map[string]any{"city": map[string]any{"type": "string"}}}}
}

func withTools(req map[string]any, tools ...map[string]any) map[string]any {
	req["tools"] = tools
	return req
}

func withMaxTokens(req map[string]any, n int) map[string]any {
	req["max_tokens"] = n
	return req
}

// jsonEqual reports whether two JSON texts hold the same value; two empty texts
// are equal.
func jsonEqual(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("decode %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

// recordedPrefix returns the first n messages of a recorded conversation as
// Messages API messages: tool calls become tool_use blocks and tool messages
// tool_result blocks of a user message.
func recordedPrefix(t *testing.T, conv recordedConversation, n int) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, m := range conv.Messages[:n] {
		content, err := contentText(m.Content)
		if err != nil {
			t.Fatalf("content: %v", err)
		}
		switch m.Role {
		case "user":
			out = append(out, msg("user", text(content)))
		case "tool":
			out = append(out, msg("user", map[string]any{"type": "tool_result",
				"tool_use_id": m.ToolCallID, "content": content}))
		case "assistant":
			var blocks []map[string]any
			if content != "" {
				blocks = append(blocks, text(content))
			}
			for _, c := range m.ToolCalls {
				blocks = append(blocks, map[string]any{"type": "tool_use", "id": c.ID,
					"name": c.Function.Name, "input": json.RawMessage(c.Function.Arguments)})
			}
			out = append(out, msg("assistant", blocks...))
		}
	}
	return out
}

func TestMessagesAnswersWithRecordedReplies(t *testing.T) {
	path := filepath.Join(dataDir(t), "conversations", "glaive-tools-en.jsonl")
	replies, err := LoadReplies(path)
	if err != nil {
		t.Fatalf("load replies: %v", err)
	}
	conv := firstConversation(t, path)
	srv := startServer(t, Options{Replies: replies})

	// Message 3 of the first conversation is a tool call; message 5 is text that
	// follows its result.
	call := conv.Messages[3].ToolCalls[0]
	m := sendMessages(t, srv, "k", messagesReq(sonnet, nil, recordedPrefix(t, conv, 3)...))
	if m.StopReason != "tool_use" || len(m.Content) != 1 || m.Content[0].Type != "tool_use" {
		t.Fatalf("answer %+v, want one tool_use block with stop_reason tool_use", m)
	}
	got := m.Content[0]
	if got.ID != call.ID || got.Name != call.Function.Name ||
		!jsonEqual(t, got.Input, json.RawMessage(call.Function.Arguments)) {
		t.Errorf("tool_use %s %s %s, want %s %s %s", got.ID, got.Name, got.Input, call.ID,
			call.Function.Name, call.Function.Arguments)
	}
	wantOut := providers.CountTokens(call.Function.Name) +
		providers.CountTokens(call.Function.Arguments)
	if m.Usage.OutputTokens != wantOut {
		t.Errorf("output_tokens = %d, want %d", m.Usage.OutputTokens, wantOut)
	}

	want, _ := contentText(conv.Messages[5].Content)
	m = sendMessages(t, srv, "k", messagesReq(sonnet, nil, recordedPrefix(t, conv, 5)...))
	if m.text() != want || m.StopReason != "end_turn" {
		t.Errorf("answer %q (%s), want the recorded %q", m.text(), m.StopReason, want)
	}
}

func TestMessagesGeneratedTextIsDeterministic(t *testing.T) {
	srv := startServer(t, Options{})
	ask := func(question string, maxTokens int) gotMessage {
		return sendMessages(t, srv, "k", withMaxTokens(
			messagesReq(sonnet, nil, msg("user", text(question))), maxTokens))
	}
	a, b := ask("How do rollups work?", 256), ask("How do rollups work?", 256)
	if a.text() == "" || a.text() != b.text() {
		t.Errorf("same request answered %q and %q", a.text(), b.text())
	}
	if a.StopReason != "end_turn" || a.Usage.OutputTokens != providers.CountTokens(a.text()) {
		t.Errorf("stop %q output %d for %q", a.StopReason, a.Usage.OutputTokens, a.text())
	}
	if c := ask("How do budgets work?", 256); c.text() == a.text() {
		t.Errorf("different requests got the same text %q", c.text())
	}
	for _, limit := range []int{1, 5} {
		short := ask("How do rollups work?", limit)
		if short.text() == "" || short.Usage.OutputTokens > limit ||
			short.StopReason != "max_tokens" || !strings.HasPrefix(a.text(), short.text()) {
			t.Errorf("max_tokens %d: %q (%d tokens, %s)", limit, short.text(),
				short.Usage.OutputTokens, short.StopReason)
		}
	}
}
