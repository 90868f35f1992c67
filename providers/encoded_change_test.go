package providers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/providers/anthropic"
	"github.com/stated-dev/stated/providers/openai"
)

// TestEncodedCacheNeverSendsStaleBytes plays, through one cache, requests whose
// settings or messages change under the same keys, as a session's do when its
// settings are updated or it merges a message into the one before, and holds
// each body to the body encoded from scratch.
func TestEncodedCacheNeverSendsStaleBytes(t *testing.T) {
	lookup := providers.Tool{Name: "lookup", Description: "Look a booking up.",
		InputSchema: json.RawMessage(`{"type":"object"}`)}
	cancel := providers.Tool{Name: "cancel", Description: "Cancel a booking.",
		InputSchema: json.RawMessage(`{"type":"object","properties":{}}`)}
	base := []providers.Message{
		{Key: 1, Role: providers.RoleUser, Text: "Find booking 7."},
		{Key: 2, Role: providers.RoleAssistant, ToolCalls: []providers.ToolCall{
			{ID: "c1", Name: "lookup", Arguments: `{"id":"7"}`}}},
		{Key: 3, Role: providers.RoleTool, ToolCallID: "c1", Text: "booking 7: Paris"},
		{Key: 4, Role: providers.RoleUser, Text: "Cancel it."},
	}
	with := func(i int, change func(m *providers.Message)) []providers.Message {
		msgs := append([]providers.Message(nil), base...)
		change(&msgs[i])
		return msgs
	}
	plan := providers.CachePlan{System: true, Messages: []int{3}}
	steps := []struct {
		name   string
		system string
		tools  []providers.Tool
		msgs   []providers.Message
		plan   providers.CachePlan
	}{
		{"the first request", "Be brief.", []providers.Tool{lookup}, base, plan},
		{"the same request again", "Be brief.", []providers.Tool{lookup}, base, plan},
		{"a new system prompt", "Be thorough.", []providers.Tool{lookup}, base, plan},
		{"a tool added", "Be thorough.", []providers.Tool{lookup, cancel}, base, plan},
		{"a tool's schema changed", "Be thorough.", []providers.Tool{lookup,
			{Name: "cancel", Description: "Cancel a booking.",
				InputSchema: json.RawMessage(`{"type":"object","required":[]}`)}}, base, plan},
		{"no system prompt: the breakpoint on the last tool", "",
			[]providers.Tool{lookup}, base, plan},
		{"a 1-hour system breakpoint", "", []providers.Tool{lookup}, base,
			providers.CachePlan{System: true, SystemTTL: "1h", Messages: []int{3}}},
		{"a user turn merged into the one before under its key", "Be brief.",
			[]providers.Tool{lookup}, with(3, func(m *providers.Message) {
				m.Text += "\n\nAnd book a new one."
			}), plan},
		{"tool call arguments rewritten under the same key", "Be brief.",
			[]providers.Tool{lookup}, with(1, func(m *providers.Message) {
				m.ToolCalls = []providers.ToolCall{{ID: "c1", Name: "lookup",
					Arguments: `{"id":"8"}`}}
			}), plan},
		{"a tool result turned into an error", "Be brief.", []providers.Tool{lookup},
			with(2, func(m *providers.Message) { m.IsError = true }), plan},
		{"a tool result for another call under the same key", "Be brief.",
			[]providers.Tool{lookup}, with(2, func(m *providers.Message) { m.ToolCallID = "c2" }),
			plan},
		{"a key reused by another role", "Be brief.", []providers.Tool{lookup},
			append(base[:3:3], providers.Message{Key: 4, Role: providers.RoleAssistant,
				Text: "Cancel it."}), providers.CachePlan{Auto: true}},
	}
	adapters := map[string]func(*http.Client) providers.Provider{
		"anthropic": func(c *http.Client) providers.Provider {
			return anthropic.New(anthropic.Config{BaseURL: "http://upstream.invalid",
				HTTPClient: c})
		},
		"openai": func(c *http.Client) providers.Provider {
			return openai.New(openai.Config{BaseURL: "http://upstream.invalid", HTTPClient: c})
		},
	}
	for name, newAdapter := range adapters {
		t.Run(name, func(t *testing.T) {
			fresh, cached := &captureTransport{}, &captureTransport{}
			pf := newAdapter(&http.Client{Transport: fresh})
			pc := newAdapter(&http.Client{Transport: cached})
			cache := &providers.EncodedCache{}
			for _, s := range steps {
				req := func(enc *providers.EncodedCache) *providers.Request {
					return &providers.Request{Model: "claude-sonnet-4-5", MaxTokens: 512,
						System: s.system, Tools: s.tools, Messages: s.msgs, Cache: s.plan,
						Encoded: enc}
				}
				pf.Complete(context.Background(), req(nil), nil)
				pc.Complete(context.Background(), req(cache), nil)
				n := len(fresh.bodies)
				if n == 0 || len(cached.bodies) != n {
					t.Fatalf("%s: %d bodies sent fresh, %d from the cache", s.name, n,
						len(cached.bodies))
				}
				if !bytes.Equal(fresh.bodies[n-1], cached.bodies[n-1]) {
					t.Fatalf("%s: bodies differ:\n%s\n%s", s.name, fresh.bodies[n-1],
						cached.bodies[n-1])
				}
			}
		})
	}
}

// TestEncodedCacheRefusesWhatTheAdapterRefuses holds the errors of requests with
// a cache to those without one.
func TestEncodedCacheRefusesWhatTheAdapterRefuses(t *testing.T) {
	user := providers.Message{Key: 1, Role: providers.RoleUser, Text: "Hi."}
	cases := []struct {
		name string
		req  providers.Request
	}{
		{"an empty user message", providers.Request{Messages: []providers.Message{
			{Key: 1, Role: providers.RoleUser}}}},
		{"an empty assistant message", providers.Request{Messages: []providers.Message{
			user, {Key: 2, Role: providers.RoleAssistant}}}},
		{"an unknown role", providers.Request{Messages: []providers.Message{
			{Key: 1, Role: "narrator", Text: "Once."}}}},
		{"a schema that is not JSON", providers.Request{Messages: []providers.Message{user},
			Tools: []providers.Tool{{Name: "f", InputSchema: json.RawMessage(`{`)}}}},
		{"an unknown ttl", providers.Request{Messages: []providers.Message{user},
			System: "s", Cache: providers.CachePlan{System: true, TTL: "2h"}}},
		{"a breakpoint past the messages", providers.Request{
			Messages: []providers.Message{user}, Cache: providers.CachePlan{Messages: []int{3}}}},
		{"five breakpoints", providers.Request{System: "s", Messages: []providers.Message{
			user, {Key: 2, Role: providers.RoleAssistant, Text: "a"},
			{Key: 3, Role: providers.RoleUser, Text: "b"},
			{Key: 4, Role: providers.RoleAssistant, Text: "c"}},
			Cache: providers.CachePlan{System: true, Messages: []int{0, 1, 2, 3}}}},
	}
	providersOf := map[string]providers.Provider{
		"anthropic": anthropic.New(anthropic.Config{BaseURL: "http://upstream.invalid",
			HTTPClient: &http.Client{Transport: &captureTransport{}}}),
		"openai": openai.New(openai.Config{BaseURL: "http://upstream.invalid",
			HTTPClient: &http.Client{Transport: &captureTransport{}}}),
	}
	for name, p := range providersOf {
		for _, c := range cases {
			t.Run(name+"/"+c.name, func(t *testing.T) {
				fresh, cached := c.req, c.req
				fresh.Model, cached.Model = "claude-sonnet-4-5", "claude-sonnet-4-5"
				fresh.MaxTokens, cached.MaxTokens = 100, 100
				cached.Encoded = &providers.EncodedCache{}
				_, errF := p.Complete(context.Background(), &fresh, nil)
				_, errC := p.Complete(context.Background(), &cached, nil)
				if errF == nil || errC == nil || errF.Error() != errC.Error() {
					t.Fatalf("fresh: %v\ncached: %v", errF, errC)
				}
			})
		}
	}
}
