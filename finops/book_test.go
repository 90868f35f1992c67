package finops

import (
	"errors"
	"math"
	"testing"
)

// accountingCases are usages providers reported, each written the way the API
// returns it whole and the way its stream ends, with the cost worked out by hand
// per category.
var accountingCases = []struct {
	name     string
	format   UsageFormat
	model    string
	body     string // the usage of the whole response
	streamed string // the usage the stream's last event carries
	want     Tokens
	cost     float64 // USD
	naive    float64 // USD: the whole prompt as uncached input, the same output
}{
	// 3*3 + 12304*3.75 + 550*15 = 54399 per million; naive 12307*3 + 8250 = 45171.
	{"anthropic, a turn that writes the cache", UsageAnthropic, "claude-sonnet-4-5",
		`{"input_tokens":3,"cache_creation_input_tokens":12304,"cache_read_input_tokens":0,
		  "output_tokens":550,"cache_creation":{"ephemeral_5m_input_tokens":12304,
		  "ephemeral_1h_input_tokens":0}}`,
		`{"input_tokens":3,"cache_creation_input_tokens":12304,"cache_read_input_tokens":0,
		  "output_tokens":550}`,
		Tokens{Input: 3, CacheWrite5m: 12304, Output: 550}, 0.054399, 0.045171},
	// 3*3 + 2455*0.3 + 550*15 = 8995.5 per million; naive 2458*3 + 8250 = 15624.
	{"anthropic, a turn that reads the cache", UsageAnthropic, "claude-sonnet-4-5",
		`{"input_tokens":3,"cache_creation_input_tokens":0,"cache_read_input_tokens":2455,
		  "output_tokens":550,"cache_creation":{"ephemeral_5m_input_tokens":0,
		  "ephemeral_1h_input_tokens":0}}`,
		`{"input_tokens":3,"cache_read_input_tokens":2455,"output_tokens":550}`,
		Tokens{Input: 3, CacheRead: 2455, Output: 550}, 0.0089955, 0.015624},
	// (2006-1920)*2 + 1920*0.5 + 300*8 = 172 + 960 + 2400 = 3532; naive 4012 + 2400.
	{"openai chat completions with cached tokens", UsageOpenAIChat, "gpt-4.1",
		`{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,
		  "prompt_tokens_details":{"cached_tokens":1920,"audio_tokens":0},
		  "completion_tokens_details":{"reasoning_tokens":0}}`,
		`{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,
		  "prompt_tokens_details":{"cached_tokens":1920}}`,
		Tokens{Input: 86, CacheRead: 1920, Output: 300}, 0.003532, 0.006412},
	// (1553-1408)*2 + 1408*0.5 + 200*8 = 290 + 704 + 1600 = 2594; naive 3106 + 1600.
	{"openai responses with cached tokens", UsageOpenAIResponses, "gpt-4.1",
		`{"input_tokens":1553,"input_tokens_details":{"cached_tokens":1408},
		  "output_tokens":200,"output_tokens_details":{"reasoning_tokens":0},
		  "total_tokens":1753}`,
		`{"input_tokens":1553,"input_tokens_details":{"cached_tokens":1408},
		  "output_tokens":200,"total_tokens":1753}`,
		Tokens{Input: 145, CacheRead: 1408, Output: 200}, 0.002594, 0.004706},
}

func TestAccountingCasesArePricedPerCategoryStreamedOrNot(t *testing.T) {
	table := DefaultPrices()
	for _, tt := range accountingCases {
		t.Run(tt.name, func(t *testing.T) {
			var bookings []Booking
			for _, raw := range []string{tt.body, tt.streamed} {
				tok, err := ParseUsage(tt.format, []byte(raw))
				if err != nil {
					t.Fatal(err)
				}
				if tok != tt.want {
					t.Fatalf("tokens %+v, want %+v", tok, tt.want)
				}
				b, err := BookTurn(table.CostIn(tt.model), tok, nil)
				if err != nil {
					t.Fatal(err)
				}
				bookings = append(bookings, b)
			}
			whole, streamed := bookings[0], bookings[1]
			assertUSD(t, "cost", whole.CostUSD, tt.cost)
			assertUSD(t, "naive cost", whole.NaiveCostUSD, tt.naive)
			assertUSD(t, "caching saving", whole.SavingsUSD[LeverCaching], tt.naive-tt.cost)
			if streamed.CostUSD != whole.CostUSD || streamed.NaiveCostUSD != whole.NaiveCostUSD {
				t.Fatalf("streamed %+v, whole %+v", streamed, whole)
			}
		})
	}
}

func TestBookTurnSplitsSavingsByLeverAndTheyAddUp(t *testing.T) {
	cost := DefaultPrices().CostIn("claude-sonnet-4-5")
	tok := Tokens{Input: 100, CacheRead: 9000, CacheWrite5m: 400, Output: 250}
	b, err := BookTurn(cost, tok, map[Lever]int{LeverRollup: 20000, LeverRationing: 5000})
	if err != nil {
		t.Fatal(err)
	}
	// Naive: (9500 + 25000) * 3 + 250 * 15 = 103500 + 3750 per million.
	assertUSD(t, "naive", b.NaiveCostUSD, 0.10725)
	// Rationing first (name order): 5000 * 3; then rollup: 20000 * 3.
	assertUSD(t, "rationing", b.SavingsUSD[LeverRationing], 0.015)
	assertUSD(t, "rollup", b.SavingsUSD[LeverRollup], 0.06)
	sum := 0.0
	for _, v := range b.SavingsUSD {
		sum += v
	}
	assertUSD(t, "savings sum", sum, b.NaiveCostUSD-b.CostUSD)
}

func TestBookOverheadIsANegativeSavingOfItsLever(t *testing.T) {
	cost := DefaultPrices().CostIn("claude-haiku-4-5")
	b, err := BookOverhead(cost, Tokens{Input: 10000, Output: 500}, LeverRollup)
	if err != nil {
		t.Fatal(err)
	}
	// 10000*1 + 500*5 = 12500 per million.
	assertUSD(t, "cost", b.CostUSD, 0.0125)
	if b.NaiveCostUSD != 0 || b.SavingsUSD[LeverRollup] != -b.CostUSD {
		t.Fatalf("booking %+v: want no naive cost and the cost as a negative saving", b)
	}
}

func TestBookingRefusesWhatCannotBePriced(t *testing.T) {
	table := DefaultPrices()
	if _, err := BookTurn(table.CostIn("no-such-model"), Tokens{Input: 1}, nil); !errors.Is(
		err, ErrUnknownModel) {
		t.Errorf("BookTurn of an unknown model = %v", err)
	}
	if _, err := BookTurn(table.CostIn("gpt-4.1"), Tokens{Input: 1},
		map[Lever]int{LeverRollup: -1}); !errors.Is(err, ErrNegativeTokens) {
		t.Errorf("BookTurn with negative elided tokens = %v", err)
	}
}

func TestParseUsageRefusesMalformedObjects(t *testing.T) {
	tests := []struct {
		name   string
		format UsageFormat
		raw    string
	}{
		{"an unknown format", "gemini", `{}`},
		{"not JSON", UsageAnthropic, `{"input_tokens":`},
		{"a negative count", UsageAnthropic, `{"input_tokens":-5}`},
		{"a string count", UsageOpenAIChat, `{"prompt_tokens":"12"}`},
		{"an object over the size limit", UsageOpenAIChat,
			`{"x":"` + string(make([]byte, maxUsageBytes)) + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseUsage(tt.format, []byte(tt.raw)); err == nil {
				t.Fatal("ParseUsage succeeded")
			}
		})
	}
}

func TestParseUsageTakesTheOneHourWriteSplit(t *testing.T) {
	tok, err := ParseUsage(UsageAnthropic, []byte(`{"input_tokens":1,
		"cache_creation_input_tokens":3000,"cache_creation":{"ephemeral_5m_input_tokens":1000,
		"ephemeral_1h_input_tokens":2000},"output_tokens":5}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Tokens{Input: 1, CacheWrite5m: 1000, CacheWrite1h: 2000, Output: 5}); tok != want {
		t.Fatalf("tokens %+v, want %+v", tok, want)
	}
}

func assertUSD(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-12 {
		t.Fatalf("%s = %.15g USD, want %.15g", what, got, want)
	}
}
