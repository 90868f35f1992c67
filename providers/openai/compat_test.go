package openai

import (
	"context"
	"errors"
	"reflect"
	"syscall"
	"testing"

	"github.com/stated-dev/stated/providers"
)

// cacheRequest is a one-turn request with a cache key and a retention.
func cacheRequest() *providers.Request {
	return &providers.Request{
		Model: "m", MaxTokens: 64,
		Messages: []providers.Message{{Role: providers.RoleUser, Text: "hi"}},
		Cache:    providers.CachePlan{Key: "stated-s1", Retention: "24h"},
	}
}

func TestEachPresetSendsTheFieldsItsServerTakes(t *testing.T) {
	const messages = `{"model":"m","messages":[{"role":"user","content":"hi"}],`
	local := messages + `"max_tokens":64,"stream":true,"stream_options":{"include_usage":true}}`
	tests := []struct {
		preset string
		want   string
	}{
		{"openai", messages + `"max_completion_tokens":64,"stream":true,` +
			`"stream_options":{"include_usage":true},"prompt_cache_key":"stated-s1",` +
			`"prompt_cache_retention":"24h"}`},
		{"vllm", local},
		{"llamacpp", local},
		{"ollama", local},
	}
	for _, tc := range tests {
		t.Run(tc.preset, func(t *testing.T) {
			compat, err := Preset(tc.preset)
			if err != nil {
				t.Fatal(err)
			}
			srv := startServer(t, streamPieces(textStream))
			_, err = srv.client(Config{Compat: &compat}).Complete(context.Background(),
				cacheRequest(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(srv.recorded()[0].body); got != tc.want {
				t.Fatalf("body\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestACompatWithoutUsageDoesNotAskForIt(t *testing.T) {
	compat := Compat{MaxTokensField: "max_tokens",
		Usage: UsageFields{Prompt: "prompt_tokens", Completion: "completion_tokens"}}
	body, err := marshalRequest(cacheRequest(), &compat)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":64,` +
		`"stream":true}`
	if string(body) != want {
		t.Fatalf("body\n got %s\nwant %s", body, want)
	}
}

func TestPresetRefusesAnUnknownName(t *testing.T) {
	if _, err := Preset("lmstudio"); err == nil {
		t.Fatal("no error for an unknown preset")
	}
}

func TestAnInvalidCompatFailsEveryCallWithoutSendingIt(t *testing.T) {
	tests := []struct {
		name   string
		compat Compat
	}{
		{"an unknown max tokens field", Compat{MaxTokensField: "max_new_tokens",
			Usage: openAIUsage}},
		{"no prompt tokens field", Compat{MaxTokensField: "max_tokens",
			Usage: UsageFields{Completion: "completion_tokens"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, streamPieces(textStream))
			_, err := srv.client(Config{Compat: &tc.compat}).Complete(context.Background(),
				cacheRequest(), nil)
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("err %v, want ErrInvalidRequest", err)
			}
			if n := len(srv.recorded()); n != 0 {
				t.Fatalf("%d requests sent", n)
			}
		})
	}
}

func TestMarshalRequestRefusesAnUnknownRetention(t *testing.T) {
	req := cacheRequest()
	req.Cache.Retention = "1h"
	if _, err := MarshalRequest(req); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("err %v, want ErrInvalidRequest", err)
	}
}

func TestCompleteHandlesWhatCompatibleServersSend(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		want   *providers.Response
	}{
		{
			name: "two calls both at index 0 with their own ids",
			stream: deltaChunk(`{"role":"assistant","tool_calls":[`+
				`{"index":0,"id":"call_a","type":"function",`+
				`"function":{"name":"f","arguments":"{\"x\":1}"}},`+
				`{"index":0,"id":"call_b","type":"function",`+
				`"function":{"name":"g","arguments":"{}"}}]}`, "null") +
				deltaChunk(`{}`, `"stop"`) + doneEvent,
			want: &providers.Response{
				Model: "gpt-4o-mini-2024-07-18",
				ToolCalls: []providers.ToolCall{
					{ID: "call_a", Name: "f", Arguments: `{"x":1}`},
					{ID: "call_b", Name: "g", Arguments: `{}`},
				},
				StopReason: providers.StopToolUse, Status: providers.StatusComplete,
			},
		},
		{
			name: "a refusal",
			stream: deltaChunk(`{"role":"assistant","content":null,"refusal":"I can't"}`,
				"null") + deltaChunk(`{"refusal":" help."}`, "null") +
				deltaChunk(`{}`, `"stop"`) + doneEvent,
			want: &providers.Response{
				Model: "gpt-4o-mini-2024-07-18", Text: "I can't help.",
				StopReason: providers.StopRefusal, Status: providers.StatusComplete,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, streamPieces(tc.stream))
			got, err := srv.client(Config{}).Complete(context.Background(), cacheRequest(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("response\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestCompleteReportsAConnectionFailureAsATemporaryError(t *testing.T) {
	srv := startServer(t, streamPieces(textStream))
	c := srv.client(Config{})
	srv.Close() // the port now refuses connections

	got, err := c.Complete(context.Background(), cacheRequest(), nil)
	var pe *providers.Error
	if got != nil || !errors.As(err, &pe) {
		t.Fatalf("got %v, %v; want nil and a *providers.Error", got, err)
	}
	if pe.Type != providers.TypeConnection || !pe.Temporary || pe.Provider != "openai" {
		t.Fatalf("error %+v, want a temporary connection error", *pe)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err %v does not unwrap to ECONNREFUSED", err)
	}
}
