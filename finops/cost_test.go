package finops

import (
	"errors"
	"math"
	"testing"
)

// TestCostByHand holds Cost to costs worked out by hand from the table's rates,
// which the test checks first: a changed table fails here rather than silently
// changing a cost.
func TestCostByHand(t *testing.T) {
	table := DefaultPrices()
	rates := []struct {
		model string
		want  Rates
	}{
		{"claude-sonnet-4-5", Rates{Input: 3, CacheWrite5m: 3.75, CacheWrite1h: 6, CacheRead: 0.3,
			Output: 15}},
		{"claude-haiku-4-5", Rates{Input: 1, CacheWrite5m: 1.25, CacheWrite1h: 2, CacheRead: 0.1,
			Output: 5}},
		// OpenAI lists no cache write: writes cost input.
		{"gpt-4.1", Rates{Input: 2, CacheWrite5m: 2, CacheWrite1h: 2, CacheRead: 0.5, Output: 8}},
	}
	for _, r := range rates {
		p, ok := table.Lookup(r.model)
		if !ok || p.Rates != r.want {
			t.Fatalf("rates of %s = %+v (found %v), want %+v", r.model, p.Rates, ok, r.want)
		}
	}

	tests := []struct {
		name  string
		model string
		tok   Tokens
		want  float64 // USD
	}{
		// 3*3 + 12304*3.75 + 550*15 = 9 + 46140 + 8250 = 54399 per million.
		{"a turn that writes the cache", "claude-sonnet-4-5",
			Tokens{Input: 3, CacheWrite5m: 12304, Output: 550}, 0.054399},
		// 3*3 + 2455*0.3 + 550*15 = 9 + 736.5 + 8250 = 8995.5 per million.
		{"a turn that reads the cache", "claude-sonnet-4-5",
			Tokens{Input: 3, CacheRead: 2455, Output: 550}, 0.0089955},
		// Prompt 2006 of which 1920 cached: 86*2 + 1920*0.5 + 300*8 = 172 + 960 + 2400.
		{"an openai turn with cached tokens", "gpt-4.1",
			Tokens{Input: 86, CacheRead: 1920, Output: 300}, 0.003532},
		// 10000*2 = 20000 per million.
		{"an hour-long cache write", "claude-haiku-4-5", Tokens{CacheWrite1h: 10000}, 0.02},
		// No write premium: 1000*2.
		{"an openai cache write costs input", "gpt-4.1", Tokens{CacheWrite5m: 1000}, 0.002},
		{"a dated snapshot costs what its model does", "claude-sonnet-4-5-20250929",
			Tokens{Input: 3, CacheRead: 2455, Output: 550}, 0.0089955},
		{"no tokens cost nothing", "gpt-4o", Tokens{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertCost(t, table, tt.model, tt.tok, tt.want)
		})
	}
}

// TestCostLongContext checks the long-context tiers: the whole request moves to
// the tier's rates once its prompt, all input categories summed, passes the
// threshold.
func TestCostLongContext(t *testing.T) {
	table := DefaultPrices()
	tests := []struct {
		name  string
		model string
		tok   Tokens
		want  float64
	}{
		// Prompt 210000 > 200000: 150000*6 + 60000*0.6 + 1000*22.5 = 958500 per million.
		{"a prompt past the threshold pays the tier on every category", "claude-sonnet-4-5",
			Tokens{Input: 150000, CacheRead: 60000, Output: 1000}, 0.9585},
		// Prompt 200000 is not past 200000: 200000*3 + 1000*15.
		{"a prompt at the threshold pays the base", "claude-sonnet-4-5",
			Tokens{Input: 200000, Output: 1000}, 0.615},
		// 200001*6 + 1000*22.5 = 1200006 + 22500.
		{"one token past the threshold pays the tier", "claude-sonnet-4-5",
			Tokens{Input: 200001, Output: 1000}, 1.222506},
		// Cache writes count toward the prompt: 1*6 + 200000*7.5.
		{"cache writes count toward the threshold", "claude-sonnet-4-5",
			Tokens{Input: 1, CacheWrite5m: 200000}, 1.500006},
		// 272001*5 + 10*22.5 = 1360005 + 225.
		{"an openai model with a tier", "gpt-5.4", Tokens{Input: 272001, Output: 10}, 1.36023},
		// The tiered price of claude-sonnet-4-6 ended on 2026-03-13: 300000*3.
		{"a tier the source retired is gone", "claude-sonnet-4-6", Tokens{Input: 300000}, 0.9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertCost(t, table, tt.model, tt.tok, tt.want)
		})
	}
}

func TestCostRefusesUnknownModelsAndNegativeCounts(t *testing.T) {
	table := DefaultPrices()
	if _, err := table.Cost("llama-3-70b", Tokens{Input: 1}); !errors.Is(err, ErrUnknownModel) {
		t.Errorf("Cost of an unknown model = %v, want ErrUnknownModel", err)
	}
	negative := []Tokens{{Input: -1}, {CacheWrite5m: -1}, {CacheWrite1h: -1}, {CacheRead: -1},
		{Output: -1}}
	for _, tok := range negative {
		if _, err := table.Cost("gpt-4o", tok); !errors.Is(err, ErrNegativeTokens) {
			t.Errorf("Cost(%+v) = %v, want ErrNegativeTokens", tok, err)
		}
	}
}

func TestTokensPromptSumsTheInputCategories(t *testing.T) {
	tok := Tokens{Input: 1, CacheWrite5m: 20, CacheWrite1h: 300, CacheRead: 4000, Output: 50000}
	if got := tok.Prompt(); got != 4321 {
		t.Fatalf("Prompt() = %d, want 4321", got)
	}
}

func assertCost(t *testing.T, table *PriceTable, model string, tok Tokens, want float64) {
	t.Helper()
	got, err := table.Cost(model, tok)
	if err != nil {
		t.Fatalf("Cost(%s, %+v): %v", model, tok, err)
	}
	if math.Abs(got-want) > 1e-12 {
		t.Fatalf("Cost(%s, %+v) = %.15g, want %.15g", model, tok, got, want)
	}
}
