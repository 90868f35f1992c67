package finops

import (
	"errors"
	"strings"
	"testing"
)

func TestDefaultPricesHasTheSimulatorModels(t *testing.T) {
	table := DefaultPrices()
	if table != DefaultPrices() {
		t.Error("DefaultPrices parsed the table twice")
	}
	models := []struct{ id, provider string }{
		{"claude-sonnet-4-5", "anthropic"},
		{"claude-haiku-4-5", "anthropic"},
		{"claude-opus-4-5", "anthropic"},
		{"gpt-4.1", "openai"},
		{"gpt-4o", "openai"},
		{"gpt-5", "openai"},
	}
	for _, m := range models {
		p, ok := table.Lookup(m.id)
		switch {
		case !ok:
			t.Errorf("the embedded table lacks %s", m.id)
		case p.Model != m.id || p.Provider != m.provider:
			t.Errorf("Lookup(%s) = model %s of %s", m.id, p.Model, p.Provider)
		case p.Input <= 0 || p.Output <= 0 || p.CacheRead <= 0:
			t.Errorf("%s has rates %+v, want positive input, output and cache read", m.id, p.Rates)
		}
	}
	if n := len(table.models); n < 100 {
		t.Errorf("the embedded table has %d models, want all Anthropic and OpenAI ones", n)
	}
}

func TestLookupFindsDatedVariants(t *testing.T) {
	table := DefaultPrices()
	tests := []struct {
		name, model, want string
	}{
		{"a dated anthropic snapshot", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5"},
		{"a dated haiku", "claude-haiku-4-5-20251001", "claude-haiku-4-5"},
		{"a dated opus", "claude-opus-4-5-20251101", "claude-opus-4-5"},
		{"a snapshot named by an equals rule", "claude-opus-4-20250514", "claude-opus-4-0"},
		{"a dotted alias", "claude-sonnet-4.5", "claude-sonnet-4-5"},
		{"a dated openai snapshot", "gpt-4.1-2025-04-14", "gpt-4.1"},
		{"another dated openai snapshot", "gpt-4o-2024-11-20", "gpt-4o"},
		{"a dated gpt-5", "gpt-5-2025-08-07", "gpt-5"},
		{"a smaller model is not its larger sibling", "gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"},
		{"a regex rule", "gpt-5.6-luna-2026-08-01", "gpt-5.6-luna"},
		{"an unlisted snapshot falls back to its id", "gpt-4.1-2099-01-01", "gpt-4.1"},
		{"the fallback takes the longest id", "gpt-4.1-mini-2099-01-01", "gpt-4.1-mini"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := table.Lookup(tt.model)
			if !ok || p.Model != tt.want {
				t.Fatalf("Lookup(%s) = %q (found %v), want %q", tt.model, p.Model, ok, tt.want)
			}
		})
	}
}

func TestLookupMissesUnknownModels(t *testing.T) {
	table := DefaultPrices()
	for _, model := range []string{
		"", "llama-3-70b", "gpt-4.1x", "mistral-large", strings.Repeat("claude-sonnet-4-5", 20),
	} {
		if p, ok := table.Lookup(model); ok {
			t.Errorf("Lookup(%.30q) found %s", model, p.Model)
		}
	}
	var none *PriceTable
	if _, ok := none.Lookup("gpt-4o"); ok {
		t.Error("a nil table found a model")
	}
}

func TestLookupReturnsACopy(t *testing.T) {
	table := DefaultPrices()
	p, _ := table.Lookup("claude-sonnet-4-5")
	if len(p.Tiers) == 0 {
		t.Fatal("claude-sonnet-4-5 has no long-context tier")
	}
	p.Tiers[0].Input = 1000
	again, _ := table.Lookup("claude-sonnet-4-5")
	if again.Tiers[0].Input != 6 {
		t.Fatalf("tier input = %g after a caller changed its copy, want 6", again.Tiers[0].Input)
	}
}

func TestLoadPricesFillsLeftOutRates(t *testing.T) {
	tests := []struct {
		name  string
		model string // one entry of "models"
		want  Price
	}{
		{"anthropic cache rates follow input",
			`{"id":"m","provider":"anthropic","input":4,"output":20}`,
			Price{Rates: Rates{Input: 4, CacheWrite5m: 5, CacheWrite1h: 8, CacheRead: 0.4,
				Output: 20}}},
		{"openai has no write premium and no listed read discount",
			`{"id":"m","provider":"openai","input":2,"output":8}`,
			Price{Rates: Rates{Input: 2, CacheWrite5m: 2, CacheWrite1h: 2, CacheRead: 2,
				Output: 8}}},
		{"an hour's write costs a listed 5-minute write outside anthropic",
			`{"id":"m","provider":"openai","input":2,"cache_write_5m":2.5}`,
			Price{Rates: Rates{Input: 2, CacheWrite5m: 2.5, CacheWrite1h: 2.5, CacheRead: 2}}},
		{"listed rates are kept",
			`{"id":"m","provider":"anthropic","input":1,"cache_write_5m":0,"cache_read":0}`,
			Price{Rates: Rates{Input: 1, CacheWrite1h: 2}}},
		{"a tier inherits base rates and derives from its own input",
			`{"id":"m","provider":"anthropic","input":2,"cache_read":0.5,"output":10,` +
				`"tiers":[{"above":1000,"input":4}]}`,
			Price{
				Rates: Rates{Input: 2, CacheWrite5m: 2.5, CacheWrite1h: 4, CacheRead: 0.5,
					Output: 10},
				Tiers: []Tier{{Above: 1000, Rates: Rates{Input: 4, CacheWrite5m: 5,
					CacheWrite1h: 8, CacheRead: 0.5, Output: 10}}},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table, err := LoadPrices(strings.NewReader(`{"models":[` + tt.model + `]}`))
			if err != nil {
				t.Fatal(err)
			}
			p, ok := table.Lookup("m")
			if !ok {
				t.Fatal("model m not found")
			}
			if p.Rates != tt.want.Rates || len(p.Tiers) != len(tt.want.Tiers) {
				t.Fatalf("price = %+v, want %+v", p, tt.want)
			}
			for i := range p.Tiers {
				if p.Tiers[i] != tt.want.Tiers[i] {
					t.Fatalf("tier %d = %+v, want %+v", i, p.Tiers[i], tt.want.Tiers[i])
				}
			}
		})
	}
}

func TestLoadPricesRejectsInvalidTables(t *testing.T) {
	deep := `{"starts_with":"x"}`
	for range 10 {
		deep = `{"or":[` + deep + `]}`
	}
	tests := []struct {
		name, table string
	}{
		{"malformed json", `{"models":[`},
		{"no models", `{"models":[]}`},
		{"an empty id", `{"models":[{"id":"","input":1}]}`},
		{"an id over the limit", `{"models":[{"id":"` + strings.Repeat("m", 300) + `"}]}`},
		{"a repeated id", `{"models":[{"id":"m"},{"id":"m"}]}`},
		{"a negative input", `{"models":[{"id":"m","input":-1}]}`},
		{"a negative cache read", `{"models":[{"id":"m","cache_read":-0.1}]}`},
		{"a negative tier rate", `{"models":[{"id":"m","tiers":[{"above":5,"output":-2}]}]}`},
		{"an unknown field", `{"models":[{"id":"m","inptu":1}]}`},
		{"a rule without an operator", `{"models":[{"id":"m","match":{}}]}`},
		{"a rule with two operators",
			`{"models":[{"id":"m","match":{"equals":"a","contains":"b"}}]}`},
		{"an invalid regex", `{"models":[{"id":"m","match":{"regex":"(unclosed"}}]}`},
		{"rules nested too deep", `{"models":[{"id":"m","match":` + deep + `}]}`},
		{"a tier at zero", `{"models":[{"id":"m","tiers":[{"above":0,"input":1}]}]}`},
		{"tiers out of order",
			`{"models":[{"id":"m","tiers":[{"above":9,"input":1},{"above":5,"input":2}]}]}`},
		{"data after the table", `{"models":[{"id":"m"}]} {}`},
		{"a file over the size limit",
			`{"about":"` + strings.Repeat("x", MaxPriceTableBytes) + `","models":[{"id":"m"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := LoadPrices(strings.NewReader(tt.table)); !errors.Is(err, ErrInvalidTable) {
				t.Fatalf("LoadPrices = %v, want ErrInvalidTable", err)
			}
		})
	}
}
