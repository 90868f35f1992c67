package transport_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"github.com/stated-dev/stated/session"
	"github.com/stated-dev/stated/transport"
)

// chatOnce sends a chat completion, streamed or not, and returns the assistant
// message, the usage and the session that answered.
func chatOnce(t *testing.T, c openai.Client, stream bool, p openai.ChatCompletionNewParams,
	opts ...option.RequestOption) (openai.ChatCompletionMessage, openai.CompletionUsage, string) {
	t.Helper()
	ctx := context.Background()
	var resp *http.Response
	opts = append(opts, option.WithResponseInto(&resp))
	if !stream {
		cc, err := c.Chat.Completions.New(ctx, p, opts...)
		if err != nil {
			t.Fatalf("chat completion: %v", err)
		}
		return cc.Choices[0].Message, cc.Usage, resp.Header.Get(transport.SessionHeader)
	}
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	s := c.Chat.Completions.NewStreaming(ctx, p, opts...)
	var acc openai.ChatCompletionAccumulator
	chunks := 0
	for s.Next() {
		acc.AddChunk(s.Current())
		chunks++
	}
	if err := s.Err(); err != nil {
		t.Fatalf("chat completion stream: %v", err)
	}
	if chunks < 3 || len(acc.Choices) != 1 {
		t.Fatalf("stream had %d chunks and %d choices", chunks, len(acc.Choices))
	}
	if acc.Usage.PromptTokens == 0 {
		t.Fatal("the stream had no usage chunk although include_usage was set")
	}
	return acc.Choices[0].Message, acc.Usage, resp.Header.Get(transport.SessionHeader)
}

func TestChatCompletionsStatelessHistoryFindsItsSession(t *testing.T) {
	for _, tc := range []struct {
		name   string
		model  string
		stream bool
	}{
		{"an OpenAI model answered whole", gptModel, false},
		{"an OpenAI model streamed", gptModel, true},
		{"an Anthropic model streamed", claudeModel, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := startAPINode(t)
			c := n.client()
			msgs := []openai.ChatCompletionMessageParamUnion{
				openai.SystemMessage(longSystem()), openai.UserMessage("Hello there."),
			}
			p := openai.ChatCompletionNewParams{Model: tc.model, Messages: msgs}
			a1, _, sid := chatOnce(t, c, tc.stream, p)
			if a1.Content == "" || sid == "" {
				t.Fatalf("first answer %q from session %q", a1.Content, sid)
			}

			// The second request carries the whole history, as a stateless client's does.
			p.Messages = append(msgs, a1.ToParam(), openai.UserMessage("And then?"))
			a2, u2, sid2 := chatOnce(t, c, tc.stream, p)
			if sid2 != sid {
				t.Fatalf("second request went to session %s, not %s", sid2, sid)
			}
			if u2.PromptTokensDetails.CachedTokens == 0 {
				t.Fatalf("second request read no cache: %+v", u2)
			}
			if u2.PromptTokens <= u2.PromptTokensDetails.CachedTokens {
				t.Fatalf("prompt_tokens %d must include the %d cached", u2.PromptTokens,
					u2.PromptTokensDetails.CachedTokens)
			}
			evs := n.events(sid)
			if len(evs) != 4 || evs[2].Text != "And then?" || evs[3].Text != a2.Content {
				t.Fatalf("the session's log is not the conversation: %+v", evs)
			}
		})
	}
}

func TestChatCompletionsHistoryMappingSurvivesRestart(t *testing.T) {
	n := startAPINode(t)
	c := n.client()
	msgs := []openai.ChatCompletionMessageParamUnion{
		openai.SystemMessage("Be brief."), openai.UserMessage("Name a colour."),
	}
	p := openai.ChatCompletionNewParams{Model: gptModel, Messages: msgs}
	a1, _, sid := chatOnce(t, c, false, p)

	n.restart()
	c = n.client()
	p.Messages = append(msgs, a1.ToParam(), openai.UserMessage("Another one."))
	_, _, sid2 := chatOnce(t, c, false, p)
	if sid2 != sid {
		t.Fatalf("after a restart the history went to session %s, not %s", sid2, sid)
	}
	if evs := n.events(sid); len(evs) != 4 {
		t.Fatalf("session has %d events, want 4", len(evs))
	}
}

func TestChatCompletionsDivergingHistoryGetsItsOwnSession(t *testing.T) {
	n := startAPINode(t)
	c := n.client()
	msgs := []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Name a city.")}
	a1, _, sid := chatOnce(t, c, false, openai.ChatCompletionNewParams{Model: gptModel,
		Messages: msgs})
	next := append(msgs, a1.ToParam(), openai.UserMessage("Why that one?"))
	_, _, sidA := chatOnce(t, c, false, openai.ChatCompletionNewParams{Model: gptModel,
		Messages: next})

	// The same history with another last turn (an edited question) forks.
	edited := append(msgs, a1.ToParam(), openai.UserMessage("Name a river instead."))
	_, _, sidB := chatOnce(t, c, false, openai.ChatCompletionNewParams{Model: gptModel,
		Messages: edited})
	if sidA != sid || sidB == sid {
		t.Fatalf("sessions %s, %s, %s: the edit must fork, the continuation must not",
			sid, sidA, sidB)
	}
	evs := n.events(sidB)
	if len(evs) != 4 || evs[2].Text != "Name a river instead." {
		t.Fatalf("the fork does not hold the shared history and the edit: %+v", evs)
	}

	// A history whose answer was altered by the client matches no session.
	altered := append(msgs, openai.AssistantMessage("Lisbon."), openai.UserMessage("Why?"))
	_, _, sidC := chatOnce(t, c, false, openai.ChatCompletionNewParams{Model: gptModel,
		Messages: altered})
	if sidC == sid || sidC == sidB {
		t.Fatalf("an altered history went to an existing session %s", sidC)
	}
}

func TestChatCompletionsSessionHeaderTakesOnlyNewMessages(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "whole", true: "streamed"}[stream], func(t *testing.T) {
			n := startAPINode(t)
			c := n.client()
			_, _, sid := chatOnce(t, c, stream, openai.ChatCompletionNewParams{Model: gptModel,
				Messages: []openai.ChatCompletionMessageParamUnion{
					openai.SystemMessage("Be brief."), openai.UserMessage("First question.")}})

			named := option.WithHeader(transport.SessionHeader, sid)
			_, _, sid2 := chatOnce(t, c, stream, openai.ChatCompletionNewParams{Model: gptModel,
				Messages: []openai.ChatCompletionMessageParamUnion{
					openai.UserMessage("Second question.")}}, named)
			if sid2 != sid {
				t.Fatalf("named session %s answered from %s", sid, sid2)
			}
			body := string(n.bytes.last(t, "/v1/chat/completions"))
			if strings.Contains(body, "First question.") || strings.Contains(body, "Be brief.") {
				t.Fatalf("the named request re-sent history: %s", body)
			}
			evs := n.events(sid)
			if len(evs) != 4 || evs[2].Text != "Second question." {
				t.Fatalf("the session's log is not the conversation: %+v", evs)
			}
		})
	}
}

func TestChatCompletionsToolCalls(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(map[bool]string{false: "whole", true: "streamed"}[stream], func(t *testing.T) {
			n := startAPINode(t)
			c := n.client()
			tools := []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(
				shared.FunctionDefinitionParam{Name: "get_weather",
					Description: openai.String("The weather in a city."),
					Parameters: shared.FunctionParameters{"type": "object",
						"properties": map[string]any{"city": map[string]any{"type": "string"}}}})}
			msgs := []openai.ChatCompletionMessageParamUnion{
				openai.UserMessage("What is the weather in Paris?")}
			call, _, sid := chatOnce(t, c, stream, openai.ChatCompletionNewParams{
				Model: gptModel, Messages: msgs, Tools: tools})
			if len(call.ToolCalls) != 1 || call.ToolCalls[0].Function.Name != "get_weather" ||
				call.ToolCalls[0].Function.Arguments != `{"city":"Paris"}` {
				t.Fatalf("tool call not relayed: %+v", call.ToolCalls)
			}

			msgs = append(msgs, call.ToParam(),
				openai.ToolMessage("18C and sunny", call.ToolCalls[0].ID))
			answer, _, sid2 := chatOnce(t, c, stream, openai.ChatCompletionNewParams{
				Model: gptModel, Messages: msgs, Tools: tools})
			if sid2 != sid || answer.Content != "It is 18°C and sunny in Paris." {
				t.Fatalf("answer %q from session %s (want %s)", answer.Content, sid2, sid)
			}
			evs := n.events(sid)
			if len(evs) != 4 || evs[2].Kind != session.KindToolResult {
				t.Fatalf("the tool result was not appended to the session: %+v", evs)
			}
		})
	}
}

func TestChatCompletionsErrors(t *testing.T) {
	n := startAPINode(t)
	c := n.client()
	big := strings.Repeat("x", transport.MaxOpenAIBody)
	for _, tc := range []struct {
		name   string
		params openai.ChatCompletionNewParams
		opts   []option.RequestOption
		status int
		code   string
	}{
		{"an unknown model is not found", openai.ChatCompletionNewParams{Model: "nope-1",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}},
			nil, 404, "model_not_found"},
		{"a body over the limit is too large", openai.ChatCompletionNewParams{Model: gptModel,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(big)}},
			nil, 413, "request_too_large"},
		{"a history ending with an answer has nothing to answer",
			openai.ChatCompletionNewParams{Model: gptModel,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi"),
					openai.AssistantMessage("hello")}}, nil, 400, ""},
		{"an unknown session is not found", openai.ChatCompletionNewParams{Model: gptModel,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}},
			[]option.RequestOption{option.WithHeader(transport.SessionHeader, "nosuch")},
			404, "session_not_found"},
		{"a tool result for no call is refused", openai.ChatCompletionNewParams{Model: gptModel,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi"),
				openai.AssistantMessage("hello"), openai.ToolMessage("x", "call_9")}},
			nil, 400, "unknown_tool_call"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Chat.Completions.New(context.Background(), tc.params, tc.opts...)
			var apiErr *openai.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("want an API error, got %v", err)
			}
			if apiErr.StatusCode != tc.status || tc.code != "" && apiErr.Code != tc.code {
				t.Fatalf("got %d %q (%s), want %d %q", apiErr.StatusCode, apiErr.Code,
					apiErr.Message, tc.status, tc.code)
			}
			if apiErr.Type == "" || apiErr.Message == "" {
				t.Fatalf("error is not in OpenAI's shape: %s", apiErr.RawJSON())
			}
		})
	}
}

func TestChatCompletionsIdempotencyKeyAnswersOnce(t *testing.T) {
	n := startAPINode(t)
	c := n.client()
	_, _, sid := chatOnce(t, c, false, openai.ChatCompletionNewParams{Model: gptModel,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hello.")}})
	p := openai.ChatCompletionNewParams{Model: gptModel,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Once only.")}}
	named := option.WithHeader(transport.SessionHeader, sid)
	key := option.WithHeader("Idempotency-Key", "req-42")
	first, err := c.Chat.Completions.New(context.Background(), p, named, key)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Chat.Completions.New(context.Background(), p, named, key)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != first.ID ||
		again.Choices[0].Message.Content != first.Choices[0].Message.Content {
		t.Fatalf("a retried request was answered again: %s then %s", first.ID, again.ID)
	}
	if evs := n.events(sid); len(evs) != 4 {
		t.Fatalf("the retried turn was appended again: %d events", len(evs))
	}
	other, err := c.Chat.Completions.New(context.Background(), p, named)
	if err != nil || other.ID == first.ID {
		t.Fatalf("a request without the key must get its own answer: %v", err)
	}
}
