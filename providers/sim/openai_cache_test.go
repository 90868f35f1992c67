package sim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const gpt56 = "gpt-5.6-sol"

// cachedChat is the usage of a chat answer as far as the cache goes; written is
// -1 when the usage does not report writes.
type cachedChat struct {
	prompt, cached, written int
}

// sendCached posts a chat request, checks that cached and written tokens are
// disjoint parts of the prompt, and returns them.
func sendCached(t *testing.T, srv *httptest.Server, req map[string]any) cachedChat {
	t.Helper()
	resp, body := post(t, srv, chatPath, openaiHeaders("k"), req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var c struct {
		Usage struct {
			PromptTokens        int `json:"prompt_tokens"`
			PromptTokensDetails struct {
				CachedTokens     int  `json:"cached_tokens"`
				CacheWriteTokens *int `json:"cache_write_tokens"`
			} `json:"prompt_tokens_details"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	got := cachedChat{prompt: c.Usage.PromptTokens,
		cached: c.Usage.PromptTokensDetails.CachedTokens, written: -1}
	if w := c.Usage.PromptTokensDetails.CacheWriteTokens; w != nil {
		got.written = *w
	}
	if got.cached+max(got.written, 0) > got.prompt {
		t.Fatalf("cached %d and written %d exceed the prompt of %d", got.cached,
			got.written, got.prompt)
	}
	return got
}

// bp is a text part with a breakpoint; ttl may be "".
func bp(text, ttl string) map[string]any {
	b := map[string]any{"mode": "explicit"}
	if ttl != "" {
		b["ttl"] = ttl
	}
	return map[string]any{"type": "text", "text": text, "prompt_cache_breakpoint": b}
}

func partsMsg(role string, parts ...map[string]any) map[string]any {
	list := make([]any, len(parts))
	for i, p := range parts {
		list[i] = p
	}
	return map[string]any{"role": role, "content": list}
}

func withOptions(req map[string]any, mode, ttl string) map[string]any {
	req["prompt_cache_options"] = map[string]any{"mode": mode, "ttl": ttl}
	return req
}

func TestBreakpointModelsHitExactlyAtTheImplicitBreakpoint(t *testing.T) {
	srv := startServer(t, Options{})
	system := chatMsg("system", longText(1500))
	first := chatReq(gpt56, system, chatMsg("user", "Hi."))

	a := sendCached(t, srv, first)
	input := a.prompt - chatReplyOverhead // the implicit breakpoint ends the input
	if a.cached != 0 || a.written != input {
		t.Fatalf("first request: %+v, want %d written", a, input)
	}
	if b := sendCached(t, srv, first); b.cached != input || b.written != 0 {
		t.Errorf("the same request: %+v, want %d cached", b, input)
	}

	next := chatReq(gpt56, system, chatMsg("user", "Hi."), chatMsg("assistant", "Hello."),
		chatMsg("user", "Tell me more."))
	c := sendCached(t, srv, next)
	if c.cached != input || c.written != c.prompt-chatReplyOverhead-input {
		t.Errorf("the next turn: %+v, want exactly %d cached and the rest of the input "+
			"written", c, input)
	}
}

func TestExplicitModeWritesOnlyExplicitBreakpoints(t *testing.T) {
	parts := make([]map[string]any, 5)
	for i := range parts {
		parts[i] = bp(longText(1100)+" Section "+itoa(i)+".", "")
	}
	req := func(mode string, n int) map[string]any {
		return withOptions(chatReq(gpt56, partsMsg("system", parts[:n]...),
			chatMsg("user", "Hi.")), mode, "")
	}
	tests := []struct {
		name       string
		mode       string
		probe      int  // breakpoints of the probe
		wantCached bool // whether the probe hits
	}{
		{"the oldest of five explicit breakpoints is not written", "explicit", 1, false},
		{"the second of five is", "explicit", 2, true},
		{"with the implicit one, the second of five is not written", "implicit", 2, false},
		{"with the implicit one, the third is", "implicit", 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, Options{})
			if w := sendCached(t, srv, req(tt.mode, 5)); w.written <= 0 {
				t.Fatalf("five breakpoints wrote nothing: %+v", w)
			}
			probe := sendCached(t, srv, req("explicit", tt.probe))
			if got := probe.cached > 0; got != tt.wantCached {
				t.Errorf("probe with %d breakpoints: %+v, want a hit: %v", tt.probe, probe,
					tt.wantCached)
			}
		})
	}
	t.Run("without explicit breakpoints nothing is cached", func(t *testing.T) {
		srv := startServer(t, Options{})
		plain := withOptions(chatReq(gpt56, chatMsg("system", longText(1500)),
			chatMsg("user", "Hi.")), "explicit", "")
		sendCached(t, srv, plain)
		if got := sendCached(t, srv, plain); got.cached != 0 || got.written != 0 {
			t.Errorf("repeat: %+v, want nothing cached or written", got)
		}
	})
}

func TestBreakpointTTLs(t *testing.T) {
	tests := []struct {
		name      string
		markTTL   string
		optionTTL string
		idle      time.Duration
		wantHit   bool
	}{
		{"the default 30m entry is alive after 29m", "", "", 29 * time.Minute, true},
		{"the default 30m entry is gone after 31m", "", "", 31 * time.Minute, false},
		{"a 12h breakpoint outlives 11h", "12h", "", 11 * time.Hour, true},
		{"a 12h request ttl reaches the breakpoint", "", "12h", 11 * time.Hour, true},
		{"the breakpoint's own ttl wins", "30m", "12h", time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			srv := startServer(t, Options{Clock: clock})
			req := withOptions(chatReq(gpt56, partsMsg("system", bp(longText(1500), tt.markTTL)),
				chatMsg("user", "Hi.")), "explicit", tt.optionTTL)
			sendCached(t, srv, req)
			clock.Advance(tt.idle)
			if got := sendCached(t, srv, req); (got.cached > 0) != tt.wantHit {
				t.Errorf("after %s: %+v, want a hit: %v", tt.idle, got, tt.wantHit)
			}
		})
	}
}

func TestPromptCacheRetention(t *testing.T) {
	tests := []struct {
		name      string
		model     string
		retention string
		idle      time.Duration
		status    int
		wantHit   bool
	}{
		{"in_memory lasts 10 idle minutes", "gpt-4.1", "in_memory", 11 * time.Minute, 200,
			false},
		{"24h outlasts them", "gpt-4.1", "24h", 11 * time.Hour, 200, true},
		{"24h ends after a day", "gpt-4.1", "24h", 25 * time.Hour, 200, false},
		{"gpt-4o has no 24h retention", "gpt-4o", "24h", 0, 400, false},
		{"gpt-5.5 has only 24h retention", "gpt-5.5", "in_memory", 0, 400, false},
		{"an unknown retention is refused", "gpt-4.1", "forever", 0, 400, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
			srv := startServer(t, Options{Clock: clock})
			req := chatReq(tt.model, chatMsg("system", longText(1500)), chatMsg("user", "Hi."))
			req["prompt_cache_retention"] = tt.retention
			if tt.status != 200 {
				resp, body := post(t, srv, chatPath, openaiHeaders("k"), req)
				if resp.StatusCode != tt.status ||
					!strings.Contains(string(body), `"param":"prompt_cache_retention"`) {
					t.Errorf("%d %s, want %d about prompt_cache_retention", resp.StatusCode,
						body, tt.status)
				}
				return
			}
			sendCached(t, srv, req)
			clock.Advance(tt.idle)
			if got := sendCached(t, srv, req); (got.cached > 0) != tt.wantHit {
				t.Errorf("after %s: %+v, want a hit: %v", tt.idle, got, tt.wantHit)
			}
		})
	}
}

func TestBreakpointsAreCheckedAndOlderModelsIgnoreThem(t *testing.T) {
	srv := startServer(t, Options{})
	bad := []struct {
		name string
		req  map[string]any
	}{
		{"a ttl of 1h is refused", chatReq(gpt56, partsMsg("user", bp("Hi.", "1h")))},
		{"a mode other than explicit is refused", chatReq(gpt56, partsMsg("user",
			map[string]any{"type": "text", "text": "Hi.",
				"prompt_cache_breakpoint": map[string]any{"mode": "auto"}}))},
		{"a breakpoint on the assistant is refused", chatReq(gpt56, chatMsg("user", "Hi."),
			partsMsg("assistant", bp("Hello.", "")), chatMsg("user", "Go on."))},
		{"an unknown cache mode is refused", withOptions(chatReq(gpt56,
			chatMsg("user", "Hi.")), "sometimes", "")},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(t, srv, chatPath, openaiHeaders("k"), tt.req)
			if resp.StatusCode != http.StatusBadRequest ||
				!strings.Contains(string(body), "prompt_cache") {
				t.Errorf("%d %s, want a 400 about the cache parameters", resp.StatusCode, body)
			}
		})
	}
	t.Run("gpt-4.1 caches in steps and reports no writes", func(t *testing.T) {
		req := chatReq("gpt-4.1", partsMsg("system", bp(longText(1500), "")),
			chatMsg("user", "Hi."))
		first := sendCached(t, srv, req)
		again := sendCached(t, srv, req)
		if first.written != -1 || again.cached%128 != 0 || again.cached == 0 {
			t.Errorf("first %+v, again %+v", first, again)
		}
	})
}
