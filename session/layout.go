package session

import "github.com/stated-dev/stated/providers"

// layout builds the provider request for the next answer from the session's
// settings and its log.
//
// The prefix order is fixed: tools, system, then the turns in log order. Nothing in
// the request depends on the clock or on anything but the log, so the same log
// yields the same request bytes on any node, before and after a restart.
//
// Answers that produced nothing are left out, and user turns that end up adjacent
// (a failed answer between them) are merged, since providers expect roles to
// alternate. Tool calls of a cut answer are left out with the results that answer
// them (there can be none: such calls never become pending).
//
// The cache plan puts breakpoints at the end of the system prompt, at the end of
// the previous request (so its cache entry is read exactly, whatever the lookback
// window) and at the end of the new one (which writes the entry the next turn
// reads): three of the four Anthropic allows.
func layout(st *Settings, events []Event, cacheKey string) *providers.Request {
	req := &providers.Request{
		Model:     st.Model,
		MaxTokens: st.MaxTokens,
		Tools:     st.Tools,
		System:    st.System,
		Messages:  make([]providers.Message, 0, len(events)),
	}
	prevEnd := -1
	for i := range events {
		e := &events[i]
		switch e.Kind {
		case KindUser:
			n := len(req.Messages)
			if n > 0 && req.Messages[n-1].Role == providers.RoleUser {
				req.Messages[n-1].Text += "\n\n" + e.Text
				continue
			}
			req.Messages = append(req.Messages, providers.Message{
				Role: providers.RoleUser, Text: e.Text,
			})
		case KindToolResult:
			// An empty result is sent empty: the adapters send it in the form each
			// API accepts (Anthropic: a tool_result without content).
			req.Messages = append(req.Messages, providers.Message{
				Role: providers.RoleTool, Text: e.Text, ToolCallID: e.ToolCallID, IsError: e.IsError,
			})
		case KindAssistant:
			if !e.answered() {
				continue
			}
			prevEnd = len(req.Messages) - 1
			req.Messages = append(req.Messages, providers.Message{
				Role: providers.RoleAssistant, Text: e.Text, ToolCalls: e.completeCalls(),
			})
		}
	}
	req.Cache = cachePlan(req, prevEnd, cacheKey)
	return req
}

// cachePlan places the breakpoints described on layout. prevEnd is the index of
// the last message of the previous request, or -1.
func cachePlan(req *providers.Request, prevEnd int, key string) providers.CachePlan {
	plan := providers.CachePlan{System: req.System != "" || len(req.Tools) > 0, Key: key}
	last := len(req.Messages) - 1
	if prevEnd >= 0 && prevEnd < last {
		plan.Messages = append(plan.Messages, prevEnd)
	}
	if last >= 0 {
		plan.Messages = append(plan.Messages, last)
	}
	return plan
}
