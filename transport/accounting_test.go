package transport_test

import (
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/providers/anthropic"
	"github.com/stated-dev/stated/providers/openai"
)

// sseEvent is one server-sent event with a name.
func sseEvent(name, data string) string {
	return "event: " + name + "\ndata: " + data + "\n\n"
}

// anthropicStream answers "Hello." and reports usage (message_start carries the
// input side, message_delta the final output count).
func anthropicStream(startUsage string, output string) string {
	return sseEvent("message_start", `{"type":"message_start","message":{"id":"msg_1",`+
		`"type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],`+
		`"stop_reason":null,"usage":`+startUsage+`}}`) +
		sseEvent("content_block_start", `{"type":"content_block_start","index":0,`+
			`"content_block":{"type":"text","text":""}}`) +
		sseEvent("content_block_delta", `{"type":"content_block_delta","index":0,`+
			`"delta":{"type":"text_delta","text":"Hello."}}`) +
		sseEvent("content_block_stop", `{"type":"content_block_stop","index":0}`) +
		sseEvent("message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn",`+
			`"stop_sequence":null},"usage":{"output_tokens":`+output+`}}`) +
		sseEvent("message_stop", `{"type":"message_stop"}`)
}

func chatStream(usage string) string {
	chunk := func(s string) string { return "data: " + s + "\n\n" }
	return chunk(`{"id":"c1","object":"chat.completion.chunk","model":"gpt-4.1",`+
		`"choices":[{"index":0,"delta":{"role":"assistant","content":"Hello."},`+
		`"finish_reason":null}]}`) +
		chunk(`{"id":"c1","object":"chat.completion.chunk","model":"gpt-4.1",`+
			`"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`) +
		chunk(`{"id":"c1","object":"chat.completion.chunk","model":"gpt-4.1","choices":[],`+
			`"usage":`+usage+`}`) +
		"data: [DONE]\n\n"
}

func responsesStream(usage string) string {
	resp := func(status, usage string) string {
		return `{"id":"resp_1","object":"response","status":"` + status + `",` +
			`"model":"gpt-4.1","output":[],"usage":` + usage + `}`
	}
	return sseEvent("response.created", `{"type":"response.created","sequence_number":0,`+
		`"response":`+resp("in_progress", "null")+`}`) +
		sseEvent("response.output_item.added", `{"type":"response.output_item.added",`+
			`"sequence_number":1,"output_index":0,"item":{"id":"msg_1","type":"message",`+
			`"status":"in_progress","role":"assistant","content":[]}}`) +
		sseEvent("response.output_text.delta", `{"type":"response.output_text.delta",`+
			`"sequence_number":2,"item_id":"msg_1","output_index":0,"content_index":0,`+
			`"delta":"Hello."}`) +
		sseEvent("response.output_item.done", `{"type":"response.output_item.done",`+
			`"sequence_number":3,"output_index":0,"item":{"id":"msg_1","type":"message",`+
			`"status":"completed","role":"assistant","content":[{"type":"output_text",`+
			`"text":"Hello.","annotations":[]}]}}`) +
		sseEvent("response.completed", `{"type":"response.completed","sequence_number":4,`+
			`"response":`+resp("completed", usage)+`}`)
}

// TestAccountingCasesAreBookedPerCategoryStreamedOrNot holds the ledger to usages
// providers reported: each arrives streamed, through the real adapter, and is
// booked from the session; the same usage as the API returns it whole, read by
// finops.ParseUsage, must book the same tokens and cost, and both must equal the
// cost worked out by hand from the price table's rates.
func TestAccountingCasesAreBookedPerCategoryStreamedOrNot(t *testing.T) {
	tests := []struct {
		name    string
		model   string
		adapter func(url string) providers.Provider
		stream  string
		format  finops.UsageFormat
		body    string // the usage object of the same answer, not streamed
		want    finops.Tokens
		cost    float64
	}{
		// 3*3 + 12304*3.75 + 550*15 = 54399 per million.
		{"anthropic writing the cache", "claude-sonnet-4-5", anthropicAdapter,
			anthropicStream(`{"input_tokens":3,"cache_creation_input_tokens":12304,`+
				`"cache_read_input_tokens":0,"output_tokens":1,"cache_creation":`+
				`{"ephemeral_5m_input_tokens":12304,"ephemeral_1h_input_tokens":0}}`, "550"),
			finops.UsageAnthropic, `{"input_tokens":3,"cache_creation_input_tokens":12304,` +
				`"cache_read_input_tokens":0,"output_tokens":550}`,
			finops.Tokens{Input: 3, CacheWrite5m: 12304, Output: 550}, 0.054399},
		// 3*3 + 2455*0.3 + 550*15 = 8995.5 per million.
		{"anthropic reading the cache", "claude-sonnet-4-5", anthropicAdapter,
			anthropicStream(`{"input_tokens":3,"cache_creation_input_tokens":0,`+
				`"cache_read_input_tokens":2455,"output_tokens":1}`, "550"),
			finops.UsageAnthropic, `{"input_tokens":3,"cache_creation_input_tokens":0,` +
				`"cache_read_input_tokens":2455,"output_tokens":550}`,
			finops.Tokens{Input: 3, CacheRead: 2455, Output: 550}, 0.0089955},
		// 86*2 + 1920*0.5 + 300*8 = 3532 per million.
		{"openai chat completions", "gpt-4.1", chatAdapter,
			chatStream(`{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,` +
				`"prompt_tokens_details":{"cached_tokens":1920}}`),
			finops.UsageOpenAIChat, `{"prompt_tokens":2006,"completion_tokens":300,` +
				`"total_tokens":2306,"prompt_tokens_details":{"cached_tokens":1920}}`,
			finops.Tokens{Input: 86, CacheRead: 1920, Output: 300}, 0.003532},
		// 145*2 + 1408*0.5 + 200*8 = 2594 per million.
		{"openai responses", "gpt-4.1", responsesAdapter,
			responsesStream(`{"input_tokens":1553,"input_tokens_details":{"cached_tokens":1408},` +
				`"output_tokens":200,"output_tokens_details":{"reasoning_tokens":0},` +
				`"total_tokens":1753}`),
			finops.UsageOpenAIResponses, `{"input_tokens":1553,"input_tokens_details":` +
				`{"cached_tokens":1408},"output_tokens":200,"total_tokens":1753}`,
			finops.Tokens{Input: 145, CacheRead: 1408, Output: 200}, 0.002594},
	}
	prices := finops.DefaultPrices()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter,
				r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, tt.stream)
			}))
			t.Cleanup(upstream.Close)
			n := startFinNode(t, finOpts{provider: tt.adapter(upstream.URL), model: tt.model})

			c := n.mustDial("")
			c.send(`{"type":"open","model":"` + tt.model + `"}`)
			id := c.until("session").SessionID
			c.send(`{"type":"turn","turn_id":"t1","text":"hello"}`)
			c.answer()
			streamed := n.waitCalls(id, "", 1).Total

			got := finops.Tokens{Input: int(streamed.InputTokens),
				CacheWrite5m: int(streamed.CacheWrite5mTokens),
				CacheWrite1h: int(streamed.CacheWrite1hTokens),
				CacheRead:    int(streamed.CacheReadTokens), Output: int(streamed.OutputTokens)}
			if got != tt.want || streamed.EstimatedCalls != 0 {
				t.Fatalf("booked %+v (estimated %d), want %+v", got, streamed.EstimatedCalls,
					tt.want)
			}
			whole, err := finops.ParseUsage(tt.format, []byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			b, err := finops.BookTurn(prices.CostIn(tt.model), whole, nil)
			if err != nil {
				t.Fatal(err)
			}
			naive := float64(tt.want.Prompt())*rate(t, prices, tt.model).Input +
				float64(tt.want.Output)*rate(t, prices, tt.model).Output
			for _, c := range []struct {
				what      string
				got, want float64
			}{
				{"the streamed cost", streamed.CostUSD, tt.cost},
				{"the whole answer's cost", b.CostUSD, tt.cost},
				{"the streamed naive cost", streamed.NaiveCostUSD, naive / 1e6},
				{"the whole answer's naive cost", b.NaiveCostUSD, naive / 1e6},
			} {
				if math.Abs(c.got-c.want) > 1e-12 {
					t.Fatalf("%s = %.12g, want %.12g", c.what, c.got, c.want)
				}
			}
		})
	}
}

func rate(t *testing.T, prices *finops.PriceTable, model string) finops.Rates {
	t.Helper()
	p, ok := prices.Lookup(model)
	if !ok {
		t.Fatalf("no price for %s", model)
	}
	return p.Rates
}

func anthropicAdapter(url string) providers.Provider {
	return anthropic.New(anthropic.Config{BaseURL: url, APIKey: "test"})
}

func chatAdapter(url string) providers.Provider {
	return openai.New(openai.Config{BaseURL: url, APIKey: "test"})
}

func responsesAdapter(url string) providers.Provider {
	return openai.NewResponses(openai.Config{BaseURL: url, APIKey: "test"})
}
