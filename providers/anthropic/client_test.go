package anthropic

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

const messageStart = `{"type":"message_start","message":{"id":"msg_01","type":"message",` +
	`"role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,` +
	`"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,` +
	`"cache_read_input_tokens":0,"output_tokens":1}}}`

// textStream answers "Hello!" in two deltas.
var textStream = event("message_start", messageStart) +
	event("content_block_start", `{"type":"content_block_start","index":0,`+
		`"content_block":{"type":"text","text":""}}`) +
	event("ping", `{"type": "ping"}`) +
	event("content_block_delta", `{"type":"content_block_delta","index":0,`+
		`"delta":{"type":"text_delta","text":"Hello"}}`) +
	event("content_block_delta", `{"type":"content_block_delta","index":0,`+
		`"delta":{"type":"text_delta","text":"!"}}`) +
	event("content_block_stop", `{"type":"content_block_stop","index":0}`) +
	event("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn",`+
		`"stop_sequence":null},"usage":{"output_tokens":15}}`) +
	event("message_stop", `{"type":"message_stop"}`)

// toolStream answers with text and two tool calls whose arguments come in pieces.
var toolStream = event("message_start", messageStart) +
	event("content_block_start", `{"type":"content_block_start","index":0,`+
		`"content_block":{"type":"text","text":""}}`) +
	event("content_block_delta", `{"type":"content_block_delta","index":0,`+
		`"delta":{"type":"text_delta","text":"Let me check."}}`) +
	event("content_block_stop", `{"type":"content_block_stop","index":0}`) +
	event("content_block_start", `{"type":"content_block_start","index":1,"content_block":`+
		`{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{}}}`) +
	event("content_block_delta", `{"type":"content_block_delta","index":1,`+
		`"delta":{"type":"input_json_delta","partial_json":""}}`) +
	event("content_block_delta", `{"type":"content_block_delta","index":1,`+
		`"delta":{"type":"input_json_delta","partial_json":"{\"city\": "}}`) +
	event("content_block_delta", `{"type":"content_block_delta","index":1,`+
		`"delta":{"type":"input_json_delta","partial_json":"\"Paris\"}"}}`) +
	event("content_block_stop", `{"type":"content_block_stop","index":1}`) +
	event("content_block_start", `{"type":"content_block_start","index":2,"content_block":`+
		`{"type":"tool_use","id":"toolu_02","name":"get_time","input":{}}}`) +
	event("content_block_delta", `{"type":"content_block_delta","index":2,`+
		`"delta":{"type":"input_json_delta","partial_json":"{\"tz\":\"Europe/"}}`) +
	event("content_block_delta", `{"type":"content_block_delta","index":2,`+
		`"delta":{"type":"input_json_delta","partial_json":"Paris\"}"}}`) +
	event("content_block_stop", `{"type":"content_block_stop","index":2}`) +
	event("message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use",`+
		`"stop_sequence":null},"usage":{"output_tokens":89}}`) +
	event("message_stop", `{"type":"message_stop"}`)

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
	if r.method != http.MethodPost || r.path != "/v1/messages" {
		t.Errorf("request %s %s, want POST /v1/messages", r.method, r.path)
	}
	for name, want := range map[string]string{
		"x-api-key":         "sk-test-key",
		"anthropic-version": "2023-06-01",
		"content-type":      "application/json",
	} {
		if v := r.header.Get(name); v != want {
			t.Errorf("header %s = %q, want %q", name, v, want)
		}
	}
	if string(r.body) != toolRoundTripBody {
		t.Errorf("body\n got %s\nwant %s", r.body, toolRoundTripBody)
	}
}

func TestCompleteAppendsThePathToABaseURLWithASlash(t *testing.T) {
	srv := startServer(t, streamPieces(textStream))
	c := New(Config{BaseURL: srv.URL + "/", HTTPClient: srv.Client()})
	if _, err := c.Complete(context.Background(), toolRoundTrip(), nil); err != nil {
		t.Fatal(err)
	}
	if p := srv.recorded()[0].path; p != "/v1/messages" {
		t.Fatalf("path %q", p)
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
			name:   "a text answer",
			stream: textStream,
			want: &providers.Response{
				Model: "claude-sonnet-4-5-20250929", Text: "Hello!",
				StopReason: providers.StopEnd, Status: providers.StatusComplete,
				Usage:         providers.Usage{InputTokens: 25, OutputTokens: 15},
				UsageReported: true,
			},
			wantDeltas: []providers.Delta{
				{Kind: providers.DeltaText, Text: "Hello"},
				{Kind: providers.DeltaText, Text: "!"},
			},
		},
		{
			name:   "parallel tool calls with arguments split across deltas",
			stream: toolStream,
			want: &providers.Response{
				Model: "claude-sonnet-4-5-20250929", Text: "Let me check.",
				ToolCalls: []providers.ToolCall{
					{ID: "toolu_01", Name: "get_weather", Arguments: `{"city": "Paris"}`},
					{ID: "toolu_02", Name: "get_time", Arguments: `{"tz":"Europe/Paris"}`},
				},
				StopReason: providers.StopToolUse, Status: providers.StatusComplete,
				Usage:         providers.Usage{InputTokens: 25, OutputTokens: 89},
				UsageReported: true,
			},
			wantDeltas: []providers.Delta{
				{Kind: providers.DeltaText, Text: "Let me check."},
				{Kind: providers.DeltaToolCall, Index: 0, ID: "toolu_01", Name: "get_weather"},
				{Kind: providers.DeltaToolCall, Index: 0, Arguments: `{"city": `},
				{Kind: providers.DeltaToolCall, Index: 0, Arguments: `"Paris"}`},
				{Kind: providers.DeltaToolCall, Index: 1, ID: "toolu_02", Name: "get_time"},
				{Kind: providers.DeltaToolCall, Index: 1, Arguments: `{"tz":"Europe/`},
				{Kind: providers.DeltaToolCall, Index: 1, Arguments: `Paris"}`},
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

// usageStream is a short answer whose message_start carries startUsage and whose
// message_delta carries deltaUsage.
func usageStream(startUsage, deltaUsage string) string {
	return event("message_start", `{"type":"message_start","message":{"id":"msg_01",`+
		`"model":"claude-sonnet-4-5","usage":`+startUsage+`}}`) +
		event("content_block_start", `{"type":"content_block_start","index":0,`+
			`"content_block":{"type":"text","text":""}}`) +
		event("content_block_delta", `{"type":"content_block_delta","index":0,`+
			`"delta":{"type":"text_delta","text":"ok"}}`) +
		event("message_delta", `{"type":"message_delta","delta":{"stop_reason":"max_tokens"},`+
			`"usage":`+deltaUsage+`}`) +
		event("message_stop", `{"type":"message_stop"}`)
}

func TestCompleteMapsUsage(t *testing.T) {
	tests := []struct {
		name       string
		startUsage string
		deltaUsage string
		want       providers.Usage
	}{
		{
			name: "cache writes split by ttl when the breakdown is given",
			startUsage: `{"input_tokens":20,"cache_creation_input_tokens":300,` +
				`"cache_read_input_tokens":1000,"cache_creation":{` +
				`"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":200},` +
				`"output_tokens":1}`,
			deltaUsage: `{"output_tokens":7}`,
			want: providers.Usage{InputTokens: 20, CacheWrite5mTokens: 100,
				CacheWrite1hTokens: 200, CacheReadTokens: 1000, OutputTokens: 7},
		},
		{
			name: "cache writes count as 5m writes without the breakdown",
			startUsage: `{"input_tokens":3,"cache_creation_input_tokens":2048,` +
				`"cache_read_input_tokens":0,"output_tokens":1}`,
			deltaUsage: `{"output_tokens":9}`,
			want:       providers.Usage{InputTokens: 3, CacheWrite5mTokens: 2048, OutputTokens: 9},
		},
		{
			name:       "input fields in message_delta replace zero ones from message_start",
			startUsage: `{"input_tokens":0,"output_tokens":0}`,
			deltaUsage: `{"input_tokens":30,"cache_creation_input_tokens":50,` +
				`"cache_read_input_tokens":40,"output_tokens":12}`,
			want: providers.Usage{InputTokens: 30, CacheWrite5mTokens: 50,
				CacheReadTokens: 40, OutputTokens: 12},
		},
		{
			name:       "zero input fields in message_delta keep the earlier ones",
			startUsage: `{"input_tokens":10,"cache_read_input_tokens":5,"output_tokens":1}`,
			deltaUsage: `{"input_tokens":0,"cache_read_input_tokens":0,"output_tokens":4}`,
			want:       providers.Usage{InputTokens: 10, CacheReadTokens: 5, OutputTokens: 4},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, streamPieces(usageStream(tc.startUsage, tc.deltaUsage)))
			got, err := srv.client(Config{}).Complete(context.Background(), toolRoundTrip(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got.Usage != tc.want || !got.UsageReported {
				t.Errorf("usage %+v (reported %v), want %+v", got.Usage, got.UsageReported, tc.want)
			}
			if got.StopReason != providers.StopMaxTokens {
				t.Errorf("stop reason %q", got.StopReason)
			}
		})
	}
}

// twoDeltas is the start of an answer: message_start and the text "Hello".
var twoDeltas = event("message_start", messageStart) +
	event("content_block_start", `{"type":"content_block_start","index":0,`+
		`"content_block":{"type":"text","text":""}}`) +
	event("content_block_delta", `{"type":"content_block_delta","index":0,`+
		`"delta":{"type":"text_delta","text":"Hel"}}`) +
	event("content_block_delta", `{"type":"content_block_delta","index":0,`+
		`"delta":{"type":"text_delta","text":"lo"}}`)

// overloadedEvent is the error event of an overloaded API.
var overloadedEvent = event("error", `{"type":"error","error":{"type":"overloaded_error",`+
	`"message":"Overloaded"}}`)

// failedStreamCase is a stream that fails and how Complete must report it.
type failedStreamCase struct {
	name    string
	stream  string
	check   func(t *testing.T, err error)
	started bool
}

var failedStreamCases = []failedStreamCase{
	{
		name:    "an error event after two deltas",
		stream:  twoDeltas + overloadedEvent,
		started: true,
		check: func(t *testing.T, err error) {
			var pe *providers.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err %v, want a *providers.Error", err)
			}
			want := providers.Error{Provider: "anthropic", Type: "overloaded_error",
				Message: "Overloaded", Temporary: true}
			if *pe != want {
				t.Fatalf("error %+v, want %+v", *pe, want)
			}
		},
	},
	{
		name:    "a stream cut without message_stop",
		stream:  twoDeltas,
		started: true,
		check:   wantIs(providers.ErrStreamCut),
	},
	{
		name:    "a stream cut inside an event",
		stream:  twoDeltas + "event: content_block_delta\ndata: {\"type\":\"content_",
		started: true,
		check:   wantIs(providers.ErrStreamCut),
	},
	{
		name:    "an event that is not JSON",
		stream:  twoDeltas + event("content_block_delta", `{"type":`),
		started: true,
		check:   wantIs(providers.ErrBadStream),
	},
	{
		name:   "an error event before the answer started",
		stream: overloadedEvent,
		check: func(t *testing.T, err error) {
			var pe *providers.Error
			if !errors.As(err, &pe) || pe.Type != "overloaded_error" {
				t.Fatalf("err %v, want overloaded_error", err)
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
				Model: "claude-sonnet-4-5-20250929", Text: "Hello",
				Status: providers.StatusIncomplete,
				Usage:  providers.Usage{InputTokens: 25, OutputTokens: 1}, UsageReported: true,
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

func TestCompleteRefusesTooManyBreakpointsWithoutCallingTheAPI(t *testing.T) {
	srv := startServer(t, streamPieces(textStream))
	req := toolRoundTrip()
	req.Messages = append(req.Messages,
		providers.Message{Role: providers.RoleAssistant, Text: "Rome is sunny."},
		providers.Message{Role: providers.RoleUser, Text: "Thanks."})
	req.Cache.Messages = []int{0, 1, 5, 6}

	got, err := srv.client(Config{}).Complete(context.Background(), req, nil)
	if !errors.Is(err, ErrTooManyBreakpoints) || got != nil {
		t.Fatalf("got %v, %v; want nil, ErrTooManyBreakpoints", got, err)
	}
	if n := len(srv.recorded()); n != 0 {
		t.Fatalf("%d HTTP requests, want none", n)
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
		var log deltaLog
		got, err := client.Complete(context.Background(), toolRoundTrip(), log.add)
		if err != nil {
			t.Fatalf("%s: %v", label, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: response\n got %+v\nwant %+v", label, got, want)
		}
		if log.text() != want.Text {
			t.Fatalf("%s: deltas gave %q", label, log.text())
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

func TestCompleteReadsA200KiBEvent(t *testing.T) {
	big := strings.Repeat("lorem ipsum ", 200<<10/12)
	stream := event("message_start", messageStart) +
		event("content_block_delta", `{"type":"content_block_delta","index":0,`+
			`"delta":{"type":"text_delta","text":"`+big+`"}}`) +
		event("message_stop", `{"type":"message_stop"}`)
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

func TestNameIsAnthropic(t *testing.T) {
	if n := New(Config{}).Name(); n != "anthropic" {
		t.Fatalf("Name() = %q", n)
	}
}
