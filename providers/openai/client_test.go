package openai

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stated-dev/stated/providers"
)

const (
	cachedUsage = `{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,` +
		`"prompt_tokens_details":{"cached_tokens":1920,"audio_tokens":0},` +
		`"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,` +
		`"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`
	plainUsage = `{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29}`
)

// twoDeltas is the start of an answer: the role chunk and the text "Hello".
var twoDeltas = deltaChunk(`{"role":"assistant","content":"","refusal":null}`, "null") +
	deltaChunk(`{"content":"Hel"}`, "null") +
	deltaChunk(`{"content":"lo"}`, "null")

// textStream answers "Hello!" and reports usage with a cache hit.
var textStream = twoDeltas +
	deltaChunk(`{"content":"!"}`, "null") +
	deltaChunk(`{}`, `"stop"`) +
	chunkEvent("[]", cachedUsage) +
	doneEvent

// toolStream answers with two tool calls whose fragments interleave.
var toolStream = deltaChunk(`{"role":"assistant","content":null,"tool_calls":[{"index":0,`+
	`"id":"call_01","type":"function","function":{"name":"get_weather","arguments":""}}]}`,
	"null") +
	deltaChunk(`{"tool_calls":[{"index":1,"id":"call_02","type":"function",`+
		`"function":{"name":"get_time","arguments":""}}]}`, "null") +
	deltaChunk(`{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\""}}]}`, "null") +
	deltaChunk(`{"tool_calls":[{"index":1,"function":{"arguments":"{\"tz\":"}}]}`, "null") +
	deltaChunk(`{"tool_calls":[{"index":0,"function":{"arguments":": \"Paris\"}"}}]}`, "null") +
	deltaChunk(`{"tool_calls":[{"index":1,"function":{"arguments":"\"Europe/Paris\"}"}}]}`,
		"null") +
	deltaChunk(`{}`, `"tool_calls"`) +
	chunkEvent("[]", plainUsage) +
	doneEvent

func TestCompleteSendsTheRequestTheAPIExpects(t *testing.T) {
	srv := startServer(t, streamPieces(textStream))
	_, err := srv.client(Config{}).Complete(context.Background(), toolRoundTrip(), nil)
	if err != nil {
		t.Fatal(err)
	}

	got := srv.recorded()
	if len(got) != 1 {
		t.Fatalf("%d requests, want 1", len(got))
	}
	r := got[0]
	if r.method != http.MethodPost || r.path != "/chat/completions" {
		t.Errorf("request %s %s, want POST /chat/completions", r.method, r.path)
	}
	if v := r.header.Get("Authorization"); v != "Bearer sk-test-key" {
		t.Errorf("authorization %q", v)
	}
	if v := r.header.Get("Content-Type"); v != "application/json" {
		t.Errorf("content-type %q", v)
	}
	if string(r.body) != toolRoundTripBody {
		t.Errorf("body\n got %s\nwant %s", r.body, toolRoundTripBody)
	}
}

func TestCompleteAppendsThePathToTheBaseURL(t *testing.T) {
	srv := startServer(t, streamPieces(textStream))
	c := New(Config{BaseURL: srv.URL + "/v1/", HTTPClient: srv.Client()})
	if _, err := c.Complete(context.Background(), toolRoundTrip(), nil); err != nil {
		t.Fatal(err)
	}
	r := srv.recorded()[0]
	if r.path != "/v1/chat/completions" {
		t.Fatalf("path %q", r.path)
	}
	if v, ok := r.header["Authorization"]; ok {
		t.Fatalf("authorization %q sent without a key", v)
	}
}

func TestCompleteAssemblesTheAnswer(t *testing.T) {
	tests := []struct {
		name       string
		stream     string
		want       *providers.Response
		wantDeltas []providers.Delta
	}{
		{
			name:   "a text answer with cached prompt tokens",
			stream: textStream,
			want: &providers.Response{
				Model: "gpt-4o-mini-2024-07-18", Text: "Hello!",
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
			name:   "parallel tool calls whose fragments interleave",
			stream: toolStream,
			want: &providers.Response{
				Model: "gpt-4o-mini-2024-07-18",
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
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, streamPieces(tc.stream))
			var log deltaLog
			c := srv.client(Config{})
			got, err := c.Complete(context.Background(), toolRoundTrip(), log.add)
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

func TestCompleteMapsFinishReasons(t *testing.T) {
	tests := []struct {
		finish string
		want   providers.StopReason
	}{
		{"stop", providers.StopEnd},
		{"length", providers.StopMaxTokens},
		{"tool_calls", providers.StopToolUse},
		{"content_filter", providers.StopRefusal},
		{"a reason the API adds later", providers.StopOther},
	}
	for _, tc := range tests {
		t.Run("finish reason "+tc.finish, func(t *testing.T) {
			stream := twoDeltas + deltaChunk(`{}`, `"`+tc.finish+`"`) + doneEvent
			srv := startServer(t, streamPieces(stream))
			got, err := srv.client(Config{}).Complete(context.Background(), toolRoundTrip(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got.StopReason != tc.want || got.UsageReported {
				t.Fatalf("stop %q, usage reported %v; want %q, false",
					got.StopReason, got.UsageReported, tc.want)
			}
		})
	}
}

// serverErrorChunk is the error chunk the API sends when it fails mid-stream.
const serverErrorChunk = `data: {"error":{"message":"The server had an error while ` +
	`processing your request. Sorry about that!","type":"server_error","param":null,` +
	`"code":null}}` + "\n\n"

// failedStreamCase is a stream that fails and how Complete must report it.
type failedStreamCase struct {
	name         string
	stream       string
	check        func(t *testing.T, err error)
	started      bool
	wantUsage    providers.Usage
	wantReported bool
}

var failedStreamCases = []failedStreamCase{
	{
		name:    "an error chunk after two deltas",
		stream:  twoDeltas + serverErrorChunk,
		started: true,
		check: func(t *testing.T, err error) {
			var pe *providers.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err %v, want a *providers.Error", err)
			}
			want := providers.Error{Provider: "openai", Type: "server_error",
				Message: "The server had an error while processing your request. " +
					"Sorry about that!", Temporary: true}
			if *pe != want {
				t.Fatalf("error %+v, want %+v", *pe, want)
			}
		},
	},
	{
		name:    "a stream cut without [DONE]",
		stream:  twoDeltas,
		started: true,
		check:   wantIs(providers.ErrStreamCut),
	},
	{
		name:         "a stream cut after the usage chunk but before [DONE]",
		stream:       twoDeltas + chunkEvent("[]", plainUsage),
		started:      true,
		check:        wantIs(providers.ErrStreamCut),
		wantUsage:    providers.Usage{InputTokens: 19, OutputTokens: 10},
		wantReported: true,
	},
	{
		name:    "a chunk that is not JSON",
		stream:  twoDeltas + "data: {\"choices\":[\n\n",
		started: true,
		check:   wantIs(providers.ErrBadStream),
	},
	{
		name:   "an error chunk before the answer started",
		stream: serverErrorChunk,
		check: func(t *testing.T, err error) {
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Type != "server_error" {
				t.Fatalf("err %v, want server_error", err)
			}
		},
	},
	{
		name:   "an empty stream",
		stream: "",
		check:  wantIs(providers.ErrStreamCut),
	},
}

func TestCompleteKeepsThePartialAnswerOfAFailedStream(t *testing.T) {
	for _, tc := range failedStreamCases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, streamPieces(tc.stream))
			var log deltaLog
			c := srv.client(Config{})
			got, err := c.Complete(context.Background(), toolRoundTrip(), log.add)
			tc.check(t, err)
			if !tc.started {
				if got != nil {
					t.Fatalf("response %+v before the answer started, want nil", got)
				}
				return
			}
			want := &providers.Response{
				Model: "gpt-4o-mini-2024-07-18", Text: "Hello",
				Status: providers.StatusIncomplete,
				Usage:  tc.wantUsage, UsageReported: tc.wantReported,
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("partial response\n got %+v\nwant %+v", got, want)
			}
			if log.text() != "Hello" {
				t.Fatalf("deltas gave %q", log.text())
			}
		})
	}
}

func wantIs(target error) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		t.Helper()
		if !errors.Is(err, target) {
			t.Fatalf("err %v, want %v", err, target)
		}
	}
}

// rateLimitBody is the body of a 429 from the API.
const rateLimitBody = `{"error":{"message":"Rate limit reached for gpt-4o-mini",` +
	`"type":"requests","param":null,"code":"rate_limit_exceeded"}}`

// httpErrorCase is an HTTP error answer and the *providers.Error it must give.
type httpErrorCase struct {
	name               string
	respond            http.HandlerFunc
	want               providers.Error
	retryMin, retryMax time.Duration // bounds for a retry-after given as a date
}

var httpErrorCases = []httpErrorCase{
	{
		name:    "429 with retry-after in seconds",
		respond: errorStatus(429, rateLimitBody, "retry-after", "7"),
		want: providers.Error{Provider: "openai", Status: 429, Type: "requests",
			Message:    "Rate limit reached for gpt-4o-mini",
			RetryAfter: 7 * time.Second, Temporary: true},
	},
	{
		name:    "429 with retry-after-ms, which wins over retry-after",
		respond: errorStatus(429, rateLimitBody, "retry-after-ms", "1500", "retry-after", "2"),
		want: providers.Error{Provider: "openai", Status: 429, Type: "requests",
			Message:    "Rate limit reached for gpt-4o-mini",
			RetryAfter: 1500 * time.Millisecond, Temporary: true},
	},
	{
		name:    "429 with retry-after as an http date",
		respond: errorStatus(429, rateLimitBody, "retry-after", retryDate),
		want: providers.Error{Provider: "openai", Status: 429, Type: "requests",
			Message: "Rate limit reached for gpt-4o-mini", Temporary: true},
		retryMin: 80 * time.Second, retryMax: 91 * time.Second,
	},
	{
		name: "529 from an overloaded compatible server",
		respond: errorStatus(529, `{"error":{"message":"Overloaded","type":null,`+
			`"code":529}}`),
		want: providers.Error{Provider: "openai", Status: 529, Type: "529",
			Message: "Overloaded", Temporary: true},
	},
	{
		name: "401 with a bad key is not temporary",
		respond: errorStatus(401, `{"error":{"message":"Incorrect API key provided",`+
			`"type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`),
		want: providers.Error{Provider: "openai", Status: 401,
			Type: "invalid_request_error", Message: "Incorrect API key provided"},
	},
	{
		name: "400 invalid request is not temporary",
		respond: errorStatus(400, `{"error":{"message":"Invalid 'messages[1].role'",`+
			`"type":"invalid_request_error","param":"messages[1].role","code":null}}`),
		want: providers.Error{Provider: "openai", Status: 400,
			Type: "invalid_request_error", Message: "Invalid 'messages[1].role'"},
	},
	{
		name: "404 unknown model is not temporary",
		respond: errorStatus(404, `{"error":{"message":"The model does not exist",`+
			`"type":"invalid_request_error","param":null,"code":"model_not_found"}}`),
		want: providers.Error{Provider: "openai", Status: 404,
			Type: "invalid_request_error", Message: "The model does not exist"},
	},
	{
		name: "500 server error is temporary",
		respond: errorStatus(500, `{"error":{"message":"The server had an error",`+
			`"type":"server_error","param":null,"code":null}}`),
		want: providers.Error{Provider: "openai", Status: 500, Type: "server_error",
			Message: "The server had an error", Temporary: true},
	},
	{
		name:    "503 from a proxy with a text body",
		respond: errorStatus(503, "upstream connect error\n"),
		want: providers.Error{Provider: "openai", Status: 503,
			Message: "upstream connect error", Temporary: true},
	},
}

func TestCompleteReportsHTTPErrors(t *testing.T) {
	for _, tc := range httpErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, tc.respond)
			got, err := srv.client(Config{}).Complete(context.Background(), toolRoundTrip(), nil)
			if got != nil {
				t.Errorf("response %+v, want nil", got)
			}
			var pe *providers.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err %v, want a *providers.Error", err)
			}
			e := *pe
			if tc.retryMax > 0 {
				if e.RetryAfter < tc.retryMin || e.RetryAfter > tc.retryMax {
					t.Errorf("retry after %v, want %v..%v", e.RetryAfter, tc.retryMin, tc.retryMax)
				}
				e.RetryAfter = 0
			}
			if e != tc.want {
				t.Errorf("error\n got %+v\nwant %+v", e, tc.want)
			}
		})
	}
}

func TestCompleteStopsWhenTheContextIsCancelled(t *testing.T) {
	srv := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		streamPieces(twoDeltas)(w, r)
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var log deltaLog
	onDelta := func(d providers.Delta) {
		log.add(d)
		if log.text() == "Hello" {
			cancel()
		}
	}

	start := time.Now()
	got, err := srv.client(Config{}).Complete(ctx, toolRoundTrip(), onDelta)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("Complete took %v after the cancel", time.Since(start))
	}
	if got == nil || got.Text != "Hello" || got.Status != providers.StatusIncomplete {
		t.Fatalf("partial response %+v", got)
	}
}

func TestCompleteGivesTheSameAnswerWhereverTheStreamIsCut(t *testing.T) {
	var mu sync.Mutex
	pieces := []string{toolStream}
	srv := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		p := pieces
		mu.Unlock()
		streamPieces(p...)(w, r)
	})
	client := srv.client(Config{})
	want, err := client.Complete(context.Background(), toolRoundTrip(), nil)
	if err != nil {
		t.Fatal(err)
	}

	check := func(label string, cut []string) {
		t.Helper()
		mu.Lock()
		pieces = cut
		mu.Unlock()
		got, err := client.Complete(context.Background(), toolRoundTrip(), nil)
		if err != nil {
			t.Fatalf("%s: %v", label, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: response\n got %+v\nwant %+v", label, got, want)
		}
	}
	for at := 1; at < len(toolStream); at++ {
		check(fmt.Sprintf("split at %d", at), []string{toolStream[:at], toolStream[at:]})
	}
	for _, size := range []int{1, 2, 3, 5, 7, 64} {
		check(fmt.Sprintf("pieces of %d", size), chunks(toolStream, size))
	}
}

func chunks(s string, size int) []string {
	var out []string
	for len(s) > size {
		out = append(out, s[:size])
		s = s[size:]
	}
	return append(out, s)
}

func TestCompleteReadsA200KiBChunk(t *testing.T) {
	big := strings.Repeat("lorem ipsum ", 200<<10/12)
	stream := deltaChunk(`{"content":"`+big+`"}`, `"stop"`) + doneEvent
	srv := startServer(t, streamPieces(stream))
	got, err := srv.client(Config{}).Complete(context.Background(), toolRoundTrip(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Text != big {
		t.Fatalf("text of %d bytes, want %d", len(got.Text), len(big))
	}
}

func TestCompleteStopsReadingAtTheResponseLimit(t *testing.T) {
	srv := startServer(t, streamPieces(toolStream))
	tests := []struct {
		name  string
		limit int64
		want  error
	}{
		{"a limit below the stream's size", int64(len(toolStream)) / 2,
			providers.ErrResponseTooLarge},
		{"a limit of exactly the stream's size", int64(len(toolStream)), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := srv.client(Config{MaxResponseBytes: tc.limit})
			got, err := c.Complete(context.Background(), toolRoundTrip(), nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if tc.want != nil && (!errors.Is(err, providers.ErrBadStream) || got == nil) {
				t.Fatalf("err %v and response %v, want a bad stream and a partial", err, got)
			}
		})
	}
}

func TestNameIsOpenAI(t *testing.T) {
	if n := New(Config{}).Name(); n != "openai" {
		t.Fatalf("Name() = %q", n)
	}
}
