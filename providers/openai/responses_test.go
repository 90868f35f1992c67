package openai

import (
	"context"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stated-dev/stated/providers"
)

// respEvent is one event of a Responses stream in the API's wire format.
func respEvent(data string) string {
	typ := data[len(`{"type":"`):]
	typ = typ[:strings.IndexByte(typ, '"')]
	return "event: " + typ + "\ndata: " + data + "\n\n"
}

const respModel = "gpt-4.1-2025-04-14"

var respCreated = respEvent(`{"type":"response.created","sequence_number":0,"response":`+
	`{"id":"resp_1","object":"response","status":"in_progress","model":"`+respModel+
	`","output":[],"usage":null}}`) +
	respEvent(`{"type":"response.in_progress","sequence_number":1,"response":`+
		`{"id":"resp_1","object":"response","status":"in_progress","model":"`+respModel+
		`","output":[],"usage":null}}`)

// respCompleted ends a stream with usage (a JSON text).
func respCompleted(usage string) string {
	return respEvent(`{"type":"response.completed","sequence_number":99,"response":` +
		`{"id":"resp_1","object":"response","status":"completed","model":"` + respModel +
		`","output":[],"usage":` + usage + `}}`)
}

// respTwoDeltas is the start of an answer: a message item and the text "Hello".
var respTwoDeltas = respCreated +
	respEvent(`{"type":"response.output_item.added","sequence_number":2,"output_index":0,`+
		`"item":{"id":"msg_1","type":"message","status":"in_progress","role":"assistant",`+
		`"content":[]}}`) +
	respEvent(`{"type":"response.content_part.added","sequence_number":3,"item_id":"msg_1",`+
		`"output_index":0,"content_index":0,"part":{"type":"output_text","text":"",`+
		`"annotations":[]}}`) +
	respEvent(`{"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1",`+
		`"output_index":0,"content_index":0,"delta":"Hel","logprobs":[]}`) +
	respEvent(`{"type":"response.output_text.delta","sequence_number":5,"item_id":"msg_1",`+
		`"output_index":0,"content_index":0,"delta":"lo","logprobs":[]}`)

// respTextStream answers "Hello!" with a cache hit.
var respTextStream = respTwoDeltas +
	respEvent(`{"type":"response.output_text.delta","sequence_number":6,"item_id":"msg_1",`+
		`"output_index":0,"content_index":0,"delta":"!","logprobs":[]}`) +
	respEvent(`{"type":"response.output_text.done","sequence_number":7,"item_id":"msg_1",`+
		`"output_index":0,"content_index":0,"text":"Hello!","logprobs":[]}`) +
	respEvent(`{"type":"response.output_item.done","sequence_number":8,"output_index":0,`+
		`"item":{"id":"msg_1","type":"message","status":"completed","role":"assistant",`+
		`"content":[{"type":"output_text","text":"Hello!","annotations":[]}]}}`) +
	respCompleted(`{"input_tokens":2006,"input_tokens_details":{"cached_tokens":1920},`+
		`"output_tokens":300,"output_tokens_details":{"reasoning_tokens":0},`+
		`"total_tokens":2306}`)

// respCallAdded starts function call item id with call ID callID.
func respCallAdded(index, id, callID, name string) string {
	return respEvent(`{"type":"response.output_item.added","sequence_number":2,` +
		`"output_index":` + index + `,"item":{"id":"` + id + `","type":"function_call",` +
		`"status":"in_progress","arguments":"","call_id":"` + callID + `","name":"` + name +
		`"}}`)
}

func respArgs(id, delta string) string {
	return respEvent(`{"type":"response.function_call_arguments.delta","sequence_number":3,` +
		`"item_id":"` + id + `","output_index":0,"delta":"` + delta + `"}`)
}

// respToolStream answers with two function calls whose argument fragments
// interleave.
var respToolStream = respCreated +
	respCallAdded("0", "fc_1", "call_01", "get_weather") +
	respCallAdded("1", "fc_2", "call_02", "get_time") +
	respArgs("fc_1", `{\"city\"`) + respArgs("fc_2", `{\"tz\":`) +
	respArgs("fc_1", `: \"Paris\"}`) + respArgs("fc_2", `\"Europe/Paris\"}`) +
	respEvent(`{"type":"response.function_call_arguments.done","sequence_number":8,`+
		`"item_id":"fc_1","output_index":0,"arguments":"{\"city\": \"Paris\"}"}`) +
	respEvent(`{"type":"response.output_item.done","sequence_number":9,"output_index":0,`+
		`"item":{"id":"fc_1","type":"function_call","status":"completed",`+
		`"arguments":"{\"city\": \"Paris\"}","call_id":"call_01","name":"get_weather"}}`) +
	respCompleted(`{"input_tokens":19,"input_tokens_details":{"cached_tokens":0},`+
		`"output_tokens":10,"total_tokens":29}`)

const respToolRoundTripBody = `{"model":"gpt-4o-mini",` +
	`"instructions":"You are terse. Use <b> for emphasis.",` +
	`"tools":[{"type":"function","name":"get_weather",` +
	`"description":"Current weather for a city.","parameters":` +
	`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},` +
	`"strict":false},` +
	`{"type":"function","name":"get_time",` +
	`"parameters":{"type":"object","properties":{"tz":{"type":"string"}}},"strict":false}],` +
	`"input":[{"type":"message","role":"user","content":"Weather and time in Paris?"},` +
	`{"type":"message","role":"assistant","content":"Checking."},` +
	`{"type":"function_call","call_id":"call_01","name":"get_weather",` +
	`"arguments":"{\"city\": \"Paris\"}"},` +
	`{"type":"function_call","call_id":"call_02","name":"get_time",` +
	`"arguments":"{\"tz\":\"Europe/Paris\"}"},` +
	`{"type":"function_call_output","call_id":"call_01","output":"18°C, clear"},` +
	`{"type":"function_call_output","call_id":"call_02","output":"unknown tz"},` +
	`{"type":"message","role":"user","content":"Thanks. And Rome?"}],` +
	`"max_output_tokens":1024,"store":false,"stream":true,"prompt_cache_key":"session-42"}`

// responsesClient returns a ResponsesClient of the server.
func (s *testServer) responsesClient() *ResponsesClient {
	return NewResponses(Config{BaseURL: s.URL + "/v1", APIKey: "sk-test-key",
		HTTPClient: s.Client()})
}

func TestResponsesCompleteSendsTheRequestTheAPIExpects(t *testing.T) {
	srv := startServer(t, streamPieces(respTextStream))
	if _, err := srv.responsesClient().Complete(context.Background(), toolRoundTrip(),
		nil); err != nil {
		t.Fatal(err)
	}
	r := srv.recorded()[0]
	if r.method != http.MethodPost || r.path != "/v1/responses" {
		t.Errorf("request %s %s, want POST /v1/responses", r.method, r.path)
	}
	if v := r.header.Get("Authorization"); v != "Bearer sk-test-key" {
		t.Errorf("authorization %q", v)
	}
	if string(r.body) != respToolRoundTripBody {
		t.Errorf("body\n got %s\nwant %s", r.body, respToolRoundTripBody)
	}
}

func TestMarshalResponsesRequestSendsRetentionAndDefaultsEmptyParts(t *testing.T) {
	req := &providers.Request{Model: "m", Tools: []providers.Tool{{Name: "t"}},
		Messages: []providers.Message{
			{Role: providers.RoleUser},
			{Role: providers.RoleAssistant, ToolCalls: []providers.ToolCall{{ID: "c", Name: "t"}}},
			{Role: providers.RoleTool, ToolCallID: "c"},
		},
		Cache: providers.CachePlan{Key: "k", Retention: "in_memory"}}
	got, err := MarshalResponsesRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"model":"m","tools":[{"type":"function","name":"t",` +
		`"parameters":{"type":"object","properties":{}},"strict":false}],` +
		`"input":[{"type":"message","role":"user","content":""},` +
		`{"type":"function_call","call_id":"c","name":"t","arguments":"{}"},` +
		`{"type":"function_call_output","call_id":"c","output":""}],` +
		`"store":false,"stream":true,"prompt_cache_key":"k","prompt_cache_retention":"in_memory"}`
	if string(got) != want {
		t.Fatalf("body\n got %s\nwant %s", got, want)
	}
}

func TestResponsesCompleteAssemblesTheAnswer(t *testing.T) {
	tests := []struct {
		name       string
		stream     string
		want       *providers.Response
		wantDeltas []providers.Delta
	}{
		{
			name:   "a text answer with cached input tokens",
			stream: respTextStream,
			want: &providers.Response{
				Model: respModel, Text: "Hello!",
				StopReason: providers.StopEnd, Status: providers.StatusComplete,
				Usage: providers.Usage{InputTokens: 86, CacheReadTokens: 1920,
					OutputTokens: 300},
				UsageReported: true,
			},
			wantDeltas: []providers.Delta{
				{Kind: providers.DeltaText, Text: "Hel"},
				{Kind: providers.DeltaText, Text: "lo"},
				{Kind: providers.DeltaText, Text: "!"},
			},
		},
		{
			name:   "parallel function calls whose fragments interleave",
			stream: respToolStream,
			want: &providers.Response{
				Model: respModel,
				ToolCalls: []providers.ToolCall{
					{ID: "call_01", Name: "get_weather", Arguments: `{"city": "Paris"}`},
					{ID: "call_02", Name: "get_time", Arguments: `{"tz":"Europe/Paris"}`},
				},
				StopReason: providers.StopToolUse, Status: providers.StatusComplete,
				Usage:         providers.Usage{InputTokens: 19, OutputTokens: 10},
				UsageReported: true,
			},
			wantDeltas: []providers.Delta{
				{Kind: providers.DeltaToolCall, Index: 0, ID: "call_01", Name: "get_weather"},
				{Kind: providers.DeltaToolCall, Index: 1, ID: "call_02", Name: "get_time"},
				{Kind: providers.DeltaToolCall, Index: 0, Arguments: `{"city"`},
				{Kind: providers.DeltaToolCall, Index: 1, Arguments: `{"tz":`},
				{Kind: providers.DeltaToolCall, Index: 0, Arguments: `: "Paris"}`},
				{Kind: providers.DeltaToolCall, Index: 1, Arguments: `"Europe/Paris"}`},
			},
		},
		{
			name: "items sent whole without deltas",
			stream: respCreated + respEvent(`{"type":"response.output_item.done",`+
				`"output_index":0,"item":{"id":"msg_9","type":"message","role":"assistant",`+
				`"content":[{"type":"output_text","text":"Done."}]}}`) +
				respEvent(`{"type":"response.output_item.done","output_index":1,`+
					`"item":{"id":"fc_9","type":"function_call","arguments":"{}",`+
					`"call_id":"call_9","name":"f"}}`) +
				respCompleted(`{"input_tokens":5,"output_tokens":2}`),
			want: &providers.Response{
				Model: respModel, Text: "Done.",
				ToolCalls:  []providers.ToolCall{{ID: "call_9", Name: "f", Arguments: "{}"}},
				StopReason: providers.StopToolUse, Status: providers.StatusComplete,
				Usage: providers.Usage{InputTokens: 5, OutputTokens: 2}, UsageReported: true,
			},
			wantDeltas: []providers.Delta{
				{Kind: providers.DeltaText, Text: "Done."},
				{Kind: providers.DeltaToolCall, Index: 0, ID: "call_9", Name: "f"},
				{Kind: providers.DeltaToolCall, Index: 0, Arguments: "{}"},
			},
		},
		{
			name: "an answer cut by max_output_tokens",
			stream: respTwoDeltas + respEvent(`{"type":"response.incomplete","response":`+
				`{"status":"incomplete","model":"`+respModel+`","incomplete_details":`+
				`{"reason":"max_output_tokens"},"usage":{"input_tokens":7,"output_tokens":16}}}`),
			want: &providers.Response{
				Model: respModel, Text: "Hello",
				StopReason: providers.StopMaxTokens, Status: providers.StatusComplete,
				Usage: providers.Usage{InputTokens: 7, OutputTokens: 16}, UsageReported: true,
			},
			wantDeltas: []providers.Delta{
				{Kind: providers.DeltaText, Text: "Hel"},
				{Kind: providers.DeltaText, Text: "lo"},
			},
		},
		{
			name: "written input tokens",
			stream: respTwoDeltas + respCompleted(`{"input_tokens":5000,"input_tokens_details":`+
				`{"cached_tokens":1024,"cache_write_tokens":3840},"output_tokens":2}`),
			want: &providers.Response{
				Model: respModel, Text: "Hello",
				StopReason: providers.StopEnd, Status: providers.StatusComplete,
				Usage: providers.Usage{InputTokens: 136, CacheWrite5mTokens: 3840,
					CacheReadTokens: 1024, OutputTokens: 2},
				UsageReported: true,
			},
			wantDeltas: []providers.Delta{
				{Kind: providers.DeltaText, Text: "Hel"},
				{Kind: providers.DeltaText, Text: "lo"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, streamPieces(tc.stream))
			var log deltaLog
			got, err := srv.responsesClient().Complete(context.Background(), toolRoundTrip(),
				log.add)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("response\n got %+v\nwant %+v", got, tc.want)
			}
			if !reflect.DeepEqual(log.deltas, tc.wantDeltas) {
				t.Errorf("deltas\n got %+v\nwant %+v", log.deltas, tc.wantDeltas)
			}
		})
	}
}

func TestReadResponsesStreamGivesTheSameAnswerAtEveryByteOffset(t *testing.T) {
	read := func(r io.Reader) (*providers.Response, []providers.Delta) {
		t.Helper()
		var log deltaLog
		resp, err := readResponsesStream(context.Background(), r, log.add)
		if err != nil {
			t.Fatal(err)
		}
		return resp, log.deltas
	}
	for _, stream := range []string{respTextStream, respToolStream} {
		want, wantDeltas := read(strings.NewReader(stream))
		for at := 0; at <= len(stream); at++ {
			got, deltas := read(io.MultiReader(strings.NewReader(stream[:at]),
				strings.NewReader(stream[at:])))
			if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(deltas, wantDeltas) {
				t.Fatalf("split at %d: %+v %+v, want %+v %+v", at, got, deltas, want, wantDeltas)
			}
		}
		got, deltas := read(iotest.OneByteReader(strings.NewReader(stream)))
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(deltas, wantDeltas) {
			t.Fatalf("one byte at a time: %+v, want %+v", got, want)
		}
	}
}

var respFailed = respEvent(`{"type":"response.failed","response":{"status":"failed",` +
	`"model":"` + respModel + `","error":{"code":"server_error",` +
	`"message":"The model failed to generate a response."},"usage":null}}`)

func TestResponsesCompleteKeepsThePartialAnswerOfAFailedStream(t *testing.T) {
	tests := []struct {
		name    string
		stream  string
		started bool
		want    error            // matched with errors.Is when not nil
		wantErr *providers.Error // compared when not nil
	}{
		{name: "response.failed after two deltas", stream: respTwoDeltas + respFailed,
			started: true, wantErr: &providers.Error{Provider: "openai-responses",
				Type: "server_error", Message: "The model failed to generate a response.",
				Temporary: true}},
		{name: "an error event after two deltas", stream: respTwoDeltas +
			respEvent(`{"type":"error","code":"rate_limit_exceeded","message":"slow down",`+
				`"param":null,"sequence_number":6}`),
			started: true, wantErr: &providers.Error{Provider: "openai-responses",
				Type: "rate_limit_exceeded", Message: "slow down", Temporary: true}},
		{name: "a stream cut before response.completed", stream: respTwoDeltas,
			started: true, want: providers.ErrStreamCut},
		{name: "arguments for an item that is no function call", stream: respTwoDeltas +
			respArgs("msg_1", "{}"), started: true, want: providers.ErrBadStream},
		{name: "an event that is not JSON", stream: respTwoDeltas +
			"event: response.output_text.delta\ndata: {\"type\":\n\n",
			started: true, want: providers.ErrBadStream},
		{name: "response.failed before any output", stream: respCreated + respFailed,
			wantErr: &providers.Error{Provider: "openai-responses", Type: "server_error",
				Message: "The model failed to generate a response.", Temporary: true}},
		{name: "an empty stream", stream: "", want: providers.ErrStreamCut},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, streamPieces(tc.stream))
			var log deltaLog
			got, err := srv.responsesClient().Complete(context.Background(), toolRoundTrip(),
				log.add)
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			var pe *providers.Error
			if tc.wantErr != nil && (!errors.As(err, &pe) || *pe != *tc.wantErr) {
				t.Fatalf("err %#v, want %+v", err, *tc.wantErr)
			}
			if !tc.started {
				if got != nil {
					t.Fatalf("response %+v before any output, want nil", got)
				}
				return
			}
			if got == nil || got.Text != "Hello" || got.Status != providers.StatusIncomplete ||
				got.Model != respModel || log.text() != "Hello" {
				t.Fatalf("partial response %+v, deltas %q", got, log.text())
			}
		})
	}
}

func TestResponsesCompleteReportsHTTPErrors(t *testing.T) {
	srv := startServer(t, errorStatus(429, `{"error":{"message":"Rate limit reached",`+
		`"type":"requests","param":null,"code":"rate_limit_exceeded"}}`, "retry-after-ms", "250"))
	got, err := srv.responsesClient().Complete(context.Background(), toolRoundTrip(), nil)
	var pe *providers.Error
	if got != nil || !errors.As(err, &pe) {
		t.Fatalf("got %v, %v", got, err)
	}
	want := providers.Error{Provider: "openai-responses", Status: 429, Type: "requests",
		Message: "Rate limit reached", RetryAfter: 250e6, Temporary: true}
	if *pe != want {
		t.Fatalf("error\n got %+v\nwant %+v", *pe, want)
	}
}

func TestResponsesCompleteReadsA200KiBEvent(t *testing.T) {
	big := strings.Repeat("lorem ipsum ", 200<<10/12)
	stream := respCreated + respEvent(`{"type":"response.output_text.delta",`+
		`"item_id":"msg_1","output_index":0,"content_index":0,"delta":"`+big+`"}`) +
		respCompleted(`{"input_tokens":1,"output_tokens":1}`)
	srv := startServer(t, streamPieces(chunks(stream, 4096)...))
	got, err := srv.responsesClient().Complete(context.Background(), toolRoundTrip(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Text != big {
		t.Fatalf("text of %d bytes, want %d", len(got.Text), len(big))
	}
}

func TestResponsesCompleteReportsAConnectionFailureAsItsOwn(t *testing.T) {
	srv := startServer(t, streamPieces(respTextStream))
	c := srv.responsesClient()
	srv.Close()
	_, err := c.Complete(context.Background(), toolRoundTrip(), nil)
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Provider != "openai-responses" ||
		pe.Type != providers.TypeConnection || !pe.Temporary {
		t.Fatalf("err %v, want a temporary connection error of openai-responses", err)
	}
}

func TestResponsesNameIsOpenAIResponses(t *testing.T) {
	if n := NewResponses(Config{}).Name(); n != "openai-responses" {
		t.Fatalf("Name() = %q", n)
	}
}

// FuzzReadResponsesStream feeds the Responses decoder arbitrary bytes, seeded with
// whole and partial streams: it must never panic, a clean end must give a
// complete answer, and the deltas must always add up to the answer's text.
func FuzzReadResponsesStream(f *testing.F) {
	for _, s := range []string{respTextStream, respToolStream, respTwoDeltas + respFailed} {
		f.Add(s)
		f.Add(s[:len(s)/2])
	}
	f.Fuzz(func(t *testing.T, stream string) {
		var log deltaLog
		resp, err := readResponsesStream(context.Background(), strings.NewReader(stream),
			log.add)
		if err == nil && (resp == nil || resp.Status != providers.StatusComplete) {
			t.Fatalf("no error but answer %+v", resp)
		}
		if resp != nil && resp.Text != log.text() {
			t.Fatalf("text %q, deltas %q", resp.Text, log.text())
		}
	})
}
