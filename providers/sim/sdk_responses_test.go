package sim_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/stated-dev/stated/providers/sim"
)

// streamedResponse is what a Responses stream delivered, as the SDK decoded it.
type streamedResponse struct {
	types []string // event types in order
	text  string   // the output_text deltas joined
	args  map[string]string
	final *responses.Response // from response.completed or response.incomplete
	err   *responses.ResponseStreamEventUnion
}

// sendResponses sends params with the official SDK, streamed or not, and
// returns the Response (for a stream, the one of its last event).
func sendResponses(t *testing.T, c openai.Client, stream bool,
	params responses.ResponseNewParams, opts ...ooption.RequestOption) (*responses.Response, error) {
	t.Helper()
	if !stream {
		return c.Responses.New(ctxFor(t), params, opts...)
	}
	got, err := streamResponses(t, c, params, opts...)
	if err != nil {
		return nil, err
	}
	if got.final == nil {
		t.Fatalf("stream ended without a final response: %v", got.types)
	}
	if got.text != got.final.OutputText() {
		t.Errorf("the deltas say %q, the final response %q", got.text, got.final.OutputText())
	}
	return got.final, nil
}

// streamResponses reads a Responses stream, checking that sequence numbers count
// from 0 without a gap.
func streamResponses(t *testing.T, c openai.Client, params responses.ResponseNewParams,
	opts ...ooption.RequestOption) (*streamedResponse, error) {
	t.Helper()
	s := c.Responses.NewStreaming(ctxFor(t), params, opts...)
	defer s.Close()
	got := &streamedResponse{args: map[string]string{}}
	for s.Next() {
		ev := s.Current()
		if ev.SequenceNumber != int64(len(got.types)) {
			t.Fatalf("event %d (%s) has sequence_number %d", len(got.types), ev.Type,
				ev.SequenceNumber)
		}
		got.types = append(got.types, ev.Type)
		switch ev.Type {
		case "response.output_text.delta":
			got.text += ev.Delta
		case "response.function_call_arguments.delta":
			got.args[ev.ItemID] += ev.Delta
		case "response.completed", "response.incomplete":
			r := ev.Response
			got.final = &r
		case "error":
			got.err = &ev
		}
	}
	return got, s.Err()
}

func TestResponsesSDKReadsTextAndCachedTokens(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(streamName(stream), func(t *testing.T) {
			_, srv := startSim(t, sim.Options{})
			c := openaiClient(srv, "sk-test")
			params := responses.ResponseNewParams{Model: "gpt-4.1",
				Instructions:   openai.String(longPrompt(1500)),
				Input:          responses.ResponseNewParamsInputUnion{OfString: openai.String("Hi.")},
				PromptCacheKey: openai.String("session-1")}

			first, err := sendResponses(t, c, stream, params)
			if err != nil {
				t.Fatal(err)
			}
			u := first.Usage
			if first.Status != "completed" || first.OutputText() == "" ||
				u.InputTokens < 1500 || u.InputTokensDetails.CachedTokens != 0 ||
				u.TotalTokens != u.InputTokens+u.OutputTokens || u.OutputTokens <= 0 {
				t.Fatalf("first response: %s %q %+v", first.Status, first.OutputText(), u)
			}

			second, err := sendResponses(t, c, stream, params)
			if err != nil {
				t.Fatal(err)
			}
			cached := second.Usage.InputTokensDetails.CachedTokens
			if cached == 0 || cached%128 != 0 || cached > second.Usage.InputTokens {
				t.Errorf("second response: cached_tokens %d of %d", cached,
					second.Usage.InputTokens)
			}
		})
	}
}

func responsesWeatherParams() responses.ResponseNewParams {
	return responses.ResponseNewParams{Model: "gpt-4.1",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String(weatherQuestion)},
		Tools: []responses.ToolUnionParam{{OfFunction: &responses.FunctionToolParam{
			Name: "get_weather", Strict: openai.Bool(true), Parameters: map[string]any{
				"type": "object", "properties": map[string]any{
					"city": map[string]any{"type": "string"}}}}}}}
}

// wantWeatherCalls checks the two parallel calls of a response and returns the
// input items that answer them.
func wantWeatherCalls(t *testing.T,
	r *responses.Response) []responses.ResponseInputItemUnionParam {
	t.Helper()
	if r.Status != "completed" || len(r.Output) != 2 {
		t.Fatalf("status %s with %d items, want 2 function calls", r.Status, len(r.Output))
	}
	var answers []responses.ResponseInputItemUnionParam
	for i, city := range []string{"Paris", "Rome"} {
		call := r.Output[i].AsFunctionCall()
		var args struct{ City string }
		if err := json.Unmarshal([]byte(call.Arguments), &args); err != nil ||
			r.Output[i].Type != "function_call" || call.Name != "get_weather" ||
			args.City != city || call.CallID == "" {
			t.Fatalf("item %d: %s %+v (%v)", i, r.Output[i].Type, call, err)
		}
		out := responses.ResponseInputItemParamOfFunctionCallOutput(
			[]string{parisResult, romeResult}[i])
		out.OfFunctionCallOutput.CallID = openai.String(call.CallID)
		answers = append(answers, out)
	}
	return answers
}

func TestResponsesSDKReadsParallelToolCalls(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(streamName(stream)+", input items", func(t *testing.T) {
			_, srv := startSim(t, sim.Options{Replies: weatherReplies(t)})
			c := openaiClient(srv, "sk-test")
			params := responsesWeatherParams()
			params.Store = openai.Bool(false)
			r, err := sendResponses(t, c, stream, params)
			if err != nil {
				t.Fatal(err)
			}
			answers := wantWeatherCalls(t, r)

			input := responses.ResponseInputParam{responses.ResponseInputItemParamOfMessage(
				weatherQuestion, responses.EasyInputMessageRoleUser)}
			for _, item := range r.Output {
				call := item.AsFunctionCall().ToParam()
				input = append(input, responses.ResponseInputItemUnionParam{OfFunctionCall: &call})
			}
			params.Input = responses.ResponseNewParamsInputUnion{
				OfInputItemList: append(input, answers...)}
			r, err = sendResponses(t, c, stream, params)
			if err != nil {
				t.Fatal(err)
			}
			if r.OutputText() != weatherAnswer {
				t.Errorf("after the results: %q", r.OutputText())
			}
		})
		t.Run(streamName(stream)+", previous response", func(t *testing.T) {
			_, srv := startSim(t, sim.Options{Replies: weatherReplies(t)})
			c := openaiClient(srv, "sk-test")
			r, err := sendResponses(t, c, stream, responsesWeatherParams())
			if err != nil {
				t.Fatal(err)
			}
			params := responsesWeatherParams()
			params.PreviousResponseID = openai.String(r.ID)
			params.Input = responses.ResponseNewParamsInputUnion{
				OfInputItemList: wantWeatherCalls(t, r)}
			r, err = sendResponses(t, c, stream, params)
			if err != nil {
				t.Fatal(err)
			}
			if r.OutputText() != weatherAnswer || r.PreviousResponseID == "" {
				t.Errorf("after the results: %q (previous %q)", r.OutputText(),
					r.PreviousResponseID)
			}
		})
	}
}

func TestResponsesSDKStopsAtMaxOutputTokens(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(streamName(stream), func(t *testing.T) {
			_, srv := startSim(t, sim.Options{Replies: weatherReplies(t)})
			r, err := sendResponses(t, openaiClient(srv, "k"), stream,
				responses.ResponseNewParams{Model: "gpt-4o", MaxOutputTokens: openai.Int(16),
					Input: responses.ResponseNewParamsInputUnion{
						OfString: openai.String(storyQuestion)}})
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != "incomplete" || r.IncompleteDetails.Reason != "max_output_tokens" ||
				r.Usage.OutputTokens > 16 || !strings.HasPrefix(r.OutputText(), "Once upon") {
				t.Errorf("status %s (%s) after %d tokens: %q", r.Status,
					r.IncompleteDetails.Reason, r.Usage.OutputTokens, r.OutputText())
			}
		})
	}
}

func TestResponsesSDKCacheWritesOfBreakpointModels(t *testing.T) {
	mark := responses.ResponseInputTextPromptCacheBreakpointParam{Ttl: "12h"}
	system := responses.ResponseInputMessageContentListParam{{
		OfInputText: &responses.ResponseInputTextParam{Text: longPrompt(1500),
			PromptCacheBreakpoint: mark}}}
	for _, stream := range []bool{false, true} {
		t.Run(streamName(stream), func(t *testing.T) {
			_, srv := startSim(t, sim.Options{})
			c := openaiClient(srv, "sk-test")
			params := responses.ResponseNewParams{Model: "gpt-5.6-terra",
				Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
					responses.ResponseInputItemParamOfMessage(system,
						responses.EasyInputMessageRoleDeveloper),
					responses.ResponseInputItemParamOfMessage("Hello.",
						responses.EasyInputMessageRoleUser)}},
				PromptCacheOptions: responses.ResponseNewParamsPromptCacheOptions{Mode: "explicit"}}

			first, err := sendResponses(t, c, stream, params)
			if err != nil {
				t.Fatal(err)
			}
			d := first.Usage.InputTokensDetails
			if d.CachedTokens != 0 || d.CacheWriteTokens < 1500 ||
				d.CacheWriteTokensDetails.Ttl12hTokens != d.CacheWriteTokens ||
				first.PromptCacheOptions.Mode != "explicit" {
				t.Fatalf("first response: %+v, options %+v", d, first.PromptCacheOptions)
			}

			second, err := sendResponses(t, c, stream, params)
			if err != nil {
				t.Fatal(err)
			}
			if got := second.Usage.InputTokensDetails; got.CachedTokens != d.CacheWriteTokens ||
				got.CacheWriteTokens != 0 {
				t.Errorf("second response: cached %d written %d, want cached %d written 0",
					got.CachedTokens, got.CacheWriteTokens, d.CacheWriteTokens)
			}
		})
	}
}

func TestResponsesSDKGetsTypedErrors(t *testing.T) {
	unstored := "resp_unstored"
	tests := []struct {
		name       string
		params     func(*responses.ResponseNewParams)
		fault      string
		status     int
		code       string
		retryAfter string
	}{
		{"a rate limit says when to retry", nil, "status=429;retry-after=4", 429,
			"rate_limit_exceeded", "4"},
		{"a bad key is unauthorized", nil, "status=401", 401, "invalid_api_key", ""},
		{"max_output_tokens under 16 is a bad request", func(p *responses.ResponseNewParams) {
			p.MaxOutputTokens = openai.Int(5)
		}, "", 400, "integer_below_min_value", ""},
		{"an unknown previous response is not found", func(p *responses.ResponseNewParams) {
			p.PreviousResponseID = openai.String(unstored)
		}, "", 400, "previous_response_not_found", ""},
		{"in_memory retention is refused by gpt-5.5", func(p *responses.ResponseNewParams) {
			p.Model = "gpt-5.5"
			p.PromptCacheRetention = responses.ResponseNewParamsPromptCacheRetentionInMemory
		}, "", 400, "unsupported_value", ""},
	}
	for _, tt := range tests {
		for _, stream := range []bool{false, true} {
			t.Run(tt.name+", "+streamName(stream), func(t *testing.T) {
				_, srv := startSim(t, sim.Options{})
				params := responses.ResponseNewParams{Model: "gpt-4.1",
					Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Hi.")}}
				if tt.params != nil {
					tt.params(&params)
				}
				var opts []ooption.RequestOption
				if tt.fault != "" {
					opts = append(opts, withOpenAIFault(tt.fault))
				}
				_, err := sendResponses(t, openaiClient(srv, "k"), stream, params, opts...)
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

func TestResponsesSDKRefusesPreviousResponsesThatWereNotStored(t *testing.T) {
	_, srv := startSim(t, sim.Options{})
	c := openaiClient(srv, "k")
	hi := responses.ResponseNewParamsInputUnion{OfString: openai.String("Hi.")}
	tests := []struct {
		name   string
		store  bool
		key    string
		wantOK bool
	}{
		{"a stored response continues", true, "k", true},
		{"a response with store false is not found", false, "k", false},
		{"another key's response is not found", true, "other", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first, err := c.Responses.New(ctxFor(t), responses.ResponseNewParams{
				Model: "gpt-4.1", Input: hi, Store: openai.Bool(tt.store)})
			if err != nil {
				t.Fatal(err)
			}
			next := openaiClient(srv, tt.key)
			r, err := next.Responses.New(ctxFor(t), responses.ResponseNewParams{
				Model: "gpt-4.1", Input: hi, PreviousResponseID: openai.String(first.ID)})
			if tt.wantOK {
				if err != nil || r.Usage.InputTokens <= first.Usage.InputTokens {
					t.Fatalf("continued response: %v, %d input tokens after %d", err,
						r.Usage.InputTokens, first.Usage.InputTokens)
				}
				return
			}
			apiErr := wantOpenAIStatus(t, err, 400)
			if apiErr.Code != "previous_response_not_found" || apiErr.Param !=
				"previous_response_id" || !strings.Contains(apiErr.Message, first.ID) {
				t.Errorf("error %+v", apiErr)
			}
		})
	}
}

func TestResponsesSDKStreamFaults(t *testing.T) {
	hi := responses.ResponseNewParams{Model: "gpt-4.1",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Hi.")}}
	t.Run("an error event after two deltas reaches the client", func(t *testing.T) {
		_, srv := startSim(t, sim.Options{})
		got, err := streamResponses(t, openaiClient(srv, "k"), hi,
			withOpenAIFault("error-event=6"))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"response.created", "response.in_progress",
			"response.output_item.added", "response.content_part.added",
			"response.output_text.delta", "response.output_text.delta", "error"}
		if strings.Join(got.types, " ") != strings.Join(want, " ") {
			t.Fatalf("events %v, want %v", got.types, want)
		}
		if got.err.Code != "server_error" || got.err.Message == "" || got.final != nil {
			t.Errorf("error event %+v", got.err)
		}
	})
	t.Run("a cut stream is a transport error", func(t *testing.T) {
		_, srv := startSim(t, sim.Options{})
		got, err := streamResponses(t, openaiClient(srv, "k"), hi, withOpenAIFault("cut=3"))
		var apiErr *openai.Error
		if err == nil || errors.As(err, &apiErr) || len(got.types) != 3 {
			t.Fatalf("error %v after %v, want a transport error after 3 events", err,
				got.types)
		}
	})
	t.Run("an empty answer has one empty message", func(t *testing.T) {
		_, srv := startSim(t, sim.Options{})
		for _, stream := range []bool{false, true} {
			r, err := sendResponses(t, openaiClient(srv, "k"), stream, hi,
				withOpenAIFault("empty"))
			if err != nil || r.OutputText() != "" || r.Status != "completed" ||
				r.Usage.OutputTokens != 0 {
				t.Errorf("%s: %v %+v", streamName(stream), err, r)
			}
		}
	})
}
