package sim_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/stated-dev/stated/providers/sim"
)

const claude = "claude-sonnet-4-5-20250929"

// sendAnthropic sends params with the official SDK, streamed or not, and
// returns the Message as the SDK assembles it.
func sendAnthropic(t *testing.T, c anthropic.Client, stream bool,
	params anthropic.MessageNewParams, opts ...aoption.RequestOption) (*anthropic.Message, error) {
	t.Helper()
	ctx := ctxFor(t)
	if !stream {
		return c.Messages.New(ctx, params, opts...)
	}
	s := c.Messages.NewStreaming(ctx, params, opts...)
	defer s.Close()
	var m anthropic.Message
	for s.Next() {
		if err := m.Accumulate(s.Current()); err != nil {
			t.Fatalf("accumulate: %v", err)
		}
	}
	return &m, s.Err()
}

func cachedSystem(text string) []anthropic.TextBlockParam {
	return []anthropic.TextBlockParam{{Text: text,
		CacheControl: anthropic.NewCacheControlEphemeralParam()}}
}

func userSays(text string) []anthropic.MessageParam {
	return []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(text))}
}

func TestAnthropicSDKReadsTextAndCacheUsage(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(streamName(stream), func(t *testing.T) {
			_, srv := startSim(t, sim.Options{})
			c := anthropicClient(srv, "sk-ant-test")
			params := anthropic.MessageNewParams{Model: claude, MaxTokens: 256,
				System: cachedSystem(longPrompt(1500)), Messages: userSays("Hello there.")}

			first, err := sendAnthropic(t, c, stream, params)
			if err != nil {
				t.Fatal(err)
			}
			u := first.Usage
			if first.StopReason != anthropic.StopReasonEndTurn || len(first.Content) != 1 ||
				first.Content[0].Type != "text" || first.Content[0].Text == "" {
				t.Fatalf("first answer: stop %q, content %+v", first.StopReason, first.Content)
			}
			if u.CacheCreationInputTokens < 1500 || u.CacheReadInputTokens != 0 ||
				u.CacheCreation.Ephemeral5mInputTokens != u.CacheCreationInputTokens ||
				u.InputTokens <= 0 || u.OutputTokens <= 0 {
				t.Fatalf("first usage: %+v", u)
			}

			second, err := sendAnthropic(t, c, stream, params)
			if err != nil {
				t.Fatal(err)
			}
			v := second.Usage
			if v.CacheReadInputTokens != u.CacheCreationInputTokens ||
				v.CacheCreationInputTokens != 0 || v.InputTokens != u.InputTokens {
				t.Errorf("second usage: read %d write %d input %d, want read %d write 0 "+
					"input %d", v.CacheReadInputTokens, v.CacheCreationInputTokens,
					v.InputTokens, u.CacheCreationInputTokens, u.InputTokens)
			}
			if second.Content[0].Text != first.Content[0].Text {
				t.Errorf("the same conversation got another answer")
			}
		})
	}
}

func streamName(stream bool) string {
	if stream {
		return "streamed"
	}
	return "not streamed"
}

func weatherTool() []anthropic.ToolUnionParam {
	return []anthropic.ToolUnionParam{anthropic.ToolUnionParamOfTool(
		anthropic.ToolInputSchemaParam{Properties: map[string]any{
			"city": map[string]any{"type": "string"}}}, "get_weather")}
}

func TestAnthropicSDKReadsParallelToolCalls(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(streamName(stream), func(t *testing.T) {
			_, srv := startSim(t, sim.Options{Replies: weatherReplies(t)})
			c := anthropicClient(srv, "sk-ant-test")
			params := anthropic.MessageNewParams{Model: claude, MaxTokens: 512,
				Tools: weatherTool(), Messages: userSays(weatherQuestion)}

			m, err := sendAnthropic(t, c, stream, params)
			if err != nil {
				t.Fatal(err)
			}
			if m.StopReason != anthropic.StopReasonToolUse || len(m.Content) != 2 {
				t.Fatalf("stop %q with %d blocks, want tool_use with 2", m.StopReason,
					len(m.Content))
			}
			cities := []string{"Paris", "Rome"}
			var results []anthropic.ContentBlockParamUnion
			for i, b := range m.Content {
				var in struct{ City string }
				if err := json.Unmarshal(b.Input, &in); err != nil || b.Type != "tool_use" ||
					b.Name != "get_weather" || in.City != cities[i] || b.ID == "" {
					t.Fatalf("block %d: %s %s %s (%v)", i, b.Type, b.Name, b.Input, err)
				}
				results = append(results, anthropic.NewToolResultBlock(b.ID,
					[]string{parisResult, romeResult}[i], false))
			}

			params.Messages = append(params.Messages, m.ToParam(),
				anthropic.NewUserMessage(results...))
			m, err = sendAnthropic(t, c, stream, params)
			if err != nil {
				t.Fatal(err)
			}
			if m.StopReason != anthropic.StopReasonEndTurn || m.Content[0].Text != weatherAnswer {
				t.Errorf("after the results: stop %q, text %q", m.StopReason, m.Content[0].Text)
			}
		})
	}
}

func TestAnthropicSDKStopsAtMaxTokens(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(streamName(stream), func(t *testing.T) {
			_, srv := startSim(t, sim.Options{})
			m, err := sendAnthropic(t, anthropicClient(srv, "k"), stream,
				anthropic.MessageNewParams{Model: claude, MaxTokens: 3,
					Messages: userSays("Tell me a long story.")})
			if err != nil {
				t.Fatal(err)
			}
			if m.StopReason != anthropic.StopReasonMaxTokens || m.Usage.OutputTokens > 3 ||
				m.Content[0].Text == "" {
				t.Errorf("stop %q after %d tokens: %q", m.StopReason, m.Usage.OutputTokens,
					m.Content[0].Text)
			}
		})
	}
}

func TestAnthropicSDKGetsTypedErrors(t *testing.T) {
	five := make([]anthropic.TextBlockParam, 5)
	for i := range five {
		five[i] = anthropic.TextBlockParam{Text: "Part of the system prompt.",
			CacheControl: anthropic.NewCacheControlEphemeralParam()}
	}
	tests := []struct {
		name       string
		key        string
		system     []anthropic.TextBlockParam
		fault      string
		status     int
		kind       string
		retryAfter string
	}{
		{"five breakpoints are a bad request", "k", five, "", 400, "invalid_request_error", ""},
		{"no API key is unauthorized", "", nil, "", 401, "authentication_error", ""},
		{"a rate limit says when to retry", "k", nil, "status=429;retry-after=3", 429,
			"rate_limit_error", "3"},
		{"an overload is 529", "k", nil, "status=529", 529, "overloaded_error", "1"},
		{"a server error is 500", "k", nil, "status=500", 500, "api_error", ""},
	}
	for _, tt := range tests {
		for _, stream := range []bool{false, true} {
			t.Run(tt.name+", "+streamName(stream), func(t *testing.T) {
				_, srv := startSim(t, sim.Options{})
				var opts []aoption.RequestOption
				if tt.fault != "" {
					opts = append(opts, withFault(tt.fault))
				}
				c := anthropicClient(srv, tt.key)
				if tt.key == "" {
					c = anthropicClient(srv, "unused", aoption.WithHeaderDel("authorization"))
				}
				_, err := sendAnthropic(t, c, stream, anthropic.MessageNewParams{Model: claude,
					MaxTokens: 64, System: tt.system, Messages: userSays("Hi.")}, opts...)
				apiErr := wantAnthropicStatus(t, err, tt.status)
				if string(apiErr.Type()) != tt.kind || apiErr.Message == "" {
					t.Errorf("error type %q message %q, want type %q", apiErr.Type(),
						apiErr.Message, tt.kind)
				}
				if got := retryAfter(apiErr.Response); got != tt.retryAfter {
					t.Errorf("retry-after %q, want %q", got, tt.retryAfter)
				}
			})
		}
	}
}

func TestAnthropicSDKStreamFaults(t *testing.T) {
	params := anthropic.MessageNewParams{Model: claude, MaxTokens: 256,
		Messages: userSays("Explain the cache.")}
	t.Run("an error event after two deltas is an overloaded error", func(t *testing.T) {
		_, srv := startSim(t, sim.Options{})
		c := anthropicClient(srv, "k")
		s := c.Messages.NewStreaming(ctxFor(t), params, withFault("error-event=5"))
		defer s.Close()
		var deltas int
		for s.Next() {
			if s.Current().Type == "content_block_delta" {
				deltas++
			}
		}
		var apiErr *anthropic.Error
		if !errors.As(s.Err(), &apiErr) || apiErr.Type() != "overloaded_error" ||
			apiErr.StatusCode != http.StatusOK {
			t.Fatalf("stream error %v, want an overloaded_error after status 200", s.Err())
		}
		if deltas != 2 {
			t.Errorf("%d text deltas before the error, want 2", deltas)
		}
	})
	t.Run("a cut stream is a transport error", func(t *testing.T) {
		_, srv := startSim(t, sim.Options{})
		m, err := sendAnthropic(t, anthropicClient(srv, "k"), true, params, withFault("cut=4"))
		var apiErr *anthropic.Error
		if err == nil || errors.As(err, &apiErr) {
			t.Fatalf("error %v, want a transport error", err)
		}
		if m.ID == "" || m.StopReason != "" {
			t.Errorf("before the cut: id %q stop %q, want an id and no stop", m.ID,
				m.StopReason)
		}
	})
	t.Run("an empty answer has no content", func(t *testing.T) {
		_, srv := startSim(t, sim.Options{})
		for _, stream := range []bool{false, true} {
			m, err := sendAnthropic(t, anthropicClient(srv, "k"), stream, params,
				withFault("empty"))
			if err != nil || len(m.Content) != 0 || m.StopReason != anthropic.StopReasonEndTurn {
				t.Errorf("%s: %v, %d blocks, stop %q", streamName(stream), err,
					len(m.Content), m.StopReason)
			}
		}
	})
}
