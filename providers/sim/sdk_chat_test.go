package sim_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/ssestream"
	"github.com/openai/openai-go/v3/shared"

	"github.com/stated-dev/stated/providers/sim"
)

// sendChat sends params with the official SDK, streamed (with usage) or not, and
// returns the completion as the SDK assembles it.
func sendChat(t *testing.T, c openai.Client, stream bool, params openai.ChatCompletionNewParams,
	opts ...ooption.RequestOption) (*openai.ChatCompletion, error) {
	t.Helper()
	ctx := ctxFor(t)
	if !stream {
		return c.Chat.Completions.New(ctx, params, opts...)
	}
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{
		IncludeUsage: openai.Bool(true)}
	s := c.Chat.Completions.NewStreaming(ctx, params, opts...)
	defer s.Close()
	var acc openai.ChatCompletionAccumulator
	var usage *openai.CompletionUsage
	for s.Next() {
		chunk := s.Current()
		if !acc.AddChunk(chunk) {
			t.Fatalf("the accumulator refused chunk %s", chunk.RawJSON())
		}
		if chunk.JSON.Usage.Valid() {
			usage = &chunk.Usage
		}
	}
	// The accumulator sums only some usage fields (not cache_write_tokens): take
	// the usage chunk as the SDK decoded it.
	if usage != nil {
		acc.Usage = *usage
	}
	return &acc.ChatCompletion, s.Err()
}

func TestChatSDKReadsTextAndCachedTokens(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(streamName(stream), func(t *testing.T) {
			_, srv := startSim(t, sim.Options{})
			c := openaiClient(srv, "sk-test")
			params := openai.ChatCompletionNewParams{Model: "gpt-4.1",
				Messages: []openai.ChatCompletionMessageParamUnion{
					openai.SystemMessage(longPrompt(1500)), openai.UserMessage("Hello.")},
				PromptCacheKey: openai.String("session-1")}

			first, err := sendChat(t, c, stream, params)
			if err != nil {
				t.Fatal(err)
			}
			if len(first.Choices) != 1 || first.Choices[0].Message.Content == "" ||
				first.Choices[0].FinishReason != "stop" {
				t.Fatalf("first completion: %+v", first.Choices)
			}
			u := first.Usage
			if u.PromptTokens < 1500 || u.PromptTokensDetails.CachedTokens != 0 ||
				u.TotalTokens != u.PromptTokens+u.CompletionTokens {
				t.Fatalf("first usage: %+v", u)
			}

			second, err := sendChat(t, c, stream, params)
			if err != nil {
				t.Fatal(err)
			}
			cached := second.Usage.PromptTokensDetails.CachedTokens
			if cached == 0 || cached%128 != 0 || cached > second.Usage.PromptTokens {
				t.Errorf("second request: cached_tokens %d of %d, want a multiple of 128",
					cached, second.Usage.PromptTokens)
			}
			if second.Usage.PromptTokensDetails.JSON.CacheWriteTokens.Valid() {
				t.Errorf("gpt-4.1 reported cache_write_tokens")
			}
		})
	}
}

func chatWeatherParams() openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{Model: "gpt-4o",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(weatherQuestion)},
		Tools: []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(
			shared.FunctionDefinitionParam{Name: "get_weather", Parameters: shared.FunctionParameters{
				"type": "object", "properties": map[string]any{
					"city": map[string]any{"type": "string"}}}})}}
}

func TestChatSDKReadsParallelToolCalls(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(streamName(stream), func(t *testing.T) {
			_, srv := startSim(t, sim.Options{Replies: weatherReplies(t)})
			c := openaiClient(srv, "sk-test")
			params := chatWeatherParams()

			got, err := sendChat(t, c, stream, params)
			if err != nil {
				t.Fatal(err)
			}
			choice := got.Choices[0]
			if choice.FinishReason != "tool_calls" || len(choice.Message.ToolCalls) != 2 {
				t.Fatalf("finish %q with %d calls", choice.FinishReason,
					len(choice.Message.ToolCalls))
			}
			params.Messages = append(params.Messages, choice.Message.ToParam())
			for i, city := range []string{"Paris", "Rome"} {
				call := choice.Message.ToolCalls[i]
				var args struct{ City string }
				if err := json.Unmarshal([]byte(call.Function.Arguments), &args); err != nil ||
					call.Function.Name != "get_weather" || args.City != city || call.ID == "" {
					t.Fatalf("call %d: %+v (%v)", i, call, err)
				}
				params.Messages = append(params.Messages, openai.ToolMessage(
					[]string{parisResult, romeResult}[i], call.ID))
			}

			got, err = sendChat(t, c, stream, params)
			if err != nil {
				t.Fatal(err)
			}
			if got.Choices[0].FinishReason != "stop" ||
				got.Choices[0].Message.Content != weatherAnswer {
				t.Errorf("after the results: %q %q", got.Choices[0].FinishReason,
					got.Choices[0].Message.Content)
			}
		})
	}
}

func TestChatSDKReadsCacheWritesOfBreakpointModels(t *testing.T) {
	system := []openai.ChatCompletionContentPartTextParam{{Text: longPrompt(1500),
		PromptCacheBreakpoint: openai.ChatCompletionContentPartTextPromptCacheBreakpointParam{
			Ttl: "12h"}}}
	for _, stream := range []bool{false, true} {
		t.Run(streamName(stream), func(t *testing.T) {
			_, srv := startSim(t, sim.Options{})
			c := openaiClient(srv, "sk-test")
			params := openai.ChatCompletionNewParams{Model: "gpt-5.6-sol",
				Messages: []openai.ChatCompletionMessageParamUnion{
					openai.SystemMessage(system), openai.UserMessage("Hello.")}}

			first, err := sendChat(t, c, stream, params)
			if err != nil {
				t.Fatal(err)
			}
			d := first.Usage.PromptTokensDetails
			if d.CachedTokens != 0 || d.CacheWriteTokens < 1500 ||
				d.CacheWriteTokens > first.Usage.PromptTokens {
				t.Fatalf("first request: %+v of %d", d, first.Usage.PromptTokens)
			}

			second, err := sendChat(t, c, stream, params)
			if err != nil {
				t.Fatal(err)
			}
			if got := second.Usage.PromptTokensDetails; got.CachedTokens != d.CacheWriteTokens ||
				got.CacheWriteTokens != 0 {
				t.Errorf("second request: cached %d written %d, want cached %d written 0",
					got.CachedTokens, got.CacheWriteTokens, d.CacheWriteTokens)
			}
		})
	}
}

func TestChatSDKGetsTypedErrors(t *testing.T) {
	tests := []struct {
		name       string
		fault      string
		status     int
		code       string
		retryAfter string
	}{
		{"a rate limit says when to retry", "status=429;retry-after=2", 429,
			"rate_limit_exceeded", "2"},
		{"an overload is a 503", "status=529", 503, "", "1"},
		{"a bad key is unauthorized", "status=401", 401, "invalid_api_key", ""},
		{"a server error is 500", "status=500", 500, "", ""},
	}
	for _, tt := range tests {
		for _, stream := range []bool{false, true} {
			t.Run(tt.name+", "+streamName(stream), func(t *testing.T) {
				_, srv := startSim(t, sim.Options{})
				_, err := sendChat(t, openaiClient(srv, "k"), stream, chatWeatherParams(),
					withOpenAIFault(tt.fault))
				apiErr := wantOpenAIStatus(t, err, tt.status)
				if apiErr.Code != tt.code || apiErr.Message == "" {
					t.Errorf("code %q message %q, want code %q", apiErr.Code, apiErr.Message,
						tt.code)
				}
				if got := retryAfter(apiErr.Response); got != tt.retryAfter {
					t.Errorf("retry-after %q, want %q", got, tt.retryAfter)
				}
			})
		}
	}
}

func TestChatSDKStreamFaults(t *testing.T) {
	t.Run("an error chunk ends the stream with the SDK's stream error", func(t *testing.T) {
		_, srv := startSim(t, sim.Options{})
		_, err := sendChat(t, openaiClient(srv, "k"), true, chatWeatherParams(),
			withOpenAIFault("error-event=3"))
		var streamErr *ssestream.StreamError
		if !errors.As(err, &streamErr) {
			t.Fatalf("error %v (%T), want an *ssestream.StreamError", err, err)
		}
	})
	t.Run("an empty answer is empty content that stops", func(t *testing.T) {
		_, srv := startSim(t, sim.Options{})
		for _, stream := range []bool{false, true} {
			got, err := sendChat(t, openaiClient(srv, "k"), stream, chatWeatherParams(),
				withOpenAIFault("empty"))
			if err != nil || got.Choices[0].Message.Content != "" ||
				got.Choices[0].FinishReason != "stop" || got.Usage.CompletionTokens != 0 {
				t.Errorf("%s: %v %+v", streamName(stream), err, got.Choices)
			}
		}
	})
}
