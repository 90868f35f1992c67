// Package finops turns token usage into money and keeps it in check: the price
// table and the cost of a request (prices.go, cost.go), what a stateless client
// would have paid and the savings by lever (book.go), the durable ledger of
// provider calls and its reports (ledger.go, report.go), budgets and their
// atomic reservations (budget.go, reserve.go, spent.go), and tenants with their
// API keys (tenants.go). docs/finops.md describes them for operators.
//
// The default price table is prices.json, embedded in the binary. It is generated
// from the genai-prices data of Pydantic (MIT, see prices.LICENSE) and holds every
// Anthropic and OpenAI model of that source, at the prices in force on the date it
// records. Regenerate it from the repository root with
//
//	go run ./finops/internal/genprices \
//	    -in ../shared/data/prices/genai-prices.v2.data.json -out finops/prices.json
//
// An operator may supply a table of the same format to LoadPrices.
//
// # Table format
//
// A JSON object: "about", "source" and "prices_on" (a YYYY-MM-DD date) describe
// the table; "models" lists the models. A model has an "id", a "provider", optional
// "match" rules, rates in USD per million tokens ("input", "cache_write_5m",
// "cache_write_1h", "cache_read", "output") and optional long-context "tiers",
// each with an "above" threshold in prompt tokens and the rates that change.
//
// Rates a model leaves out are filled in:
//   - input and output: 0 (the source does not bill them, e.g. embeddings' output);
//   - cache rates, provider "anthropic": writes for 5 minutes cost 1.25 times
//     input, writes for an hour 2 times input, reads 0.1 times input, as Anthropic
//     prices its prompt cache;
//   - cache rates, any other provider (OpenAI): no write premium (a write costs
//     input; an hour's write costs what a 5-minute one does) and no read discount,
//     which is how the source bills a category it has no price for.
//
// In a tier, a left-out input or output keeps the model's base rate, a cache rate
// the model gives keeps its value, and a derived cache rate follows the tier's
// input.
package finops

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
)

// Limits on a price table and on the model names looked up in it.
const (
	// MaxPriceTableBytes bounds the size of a table file.
	MaxPriceTableBytes = 4 << 20
	// maxModelID bounds a model id in a table and a model name looked up.
	maxModelID = 256
)

//go:embed prices.json
var embeddedPrices []byte

// Rates are prices in USD per million tokens, one per token category of Tokens.
type Rates struct {
	Input        float64
	CacheWrite5m float64
	CacheWrite1h float64
	CacheRead    float64
	Output       float64
}

// Tier is a long-context price: its Rates apply to every token of a request whose
// prompt tokens (Tokens.Prompt) exceed Above.
type Tier struct {
	Above int
	Rates
}

// Price is what a model costs: its base Rates, and the long-context tiers that
// replace them for large prompts.
type Price struct {
	// Model is the model's id in the table, which may differ from the name looked
	// up (a dated snapshot finds its model).
	Model    string
	Provider string
	Rates
	// Tiers are in ascending order of Above; empty for models without
	// long-context prices.
	Tiers []Tier
}

// RatesFor returns the rates for a request of promptTokens prompt tokens: those of
// the highest tier it exceeds, else the base rates.
func (p Price) RatesFor(promptTokens int) Rates {
	r := p.Rates
	for _, t := range p.Tiers {
		if promptTokens > t.Above {
			r = t.Rates
		}
	}
	return r
}

// PriceTable maps model names to prices. It never changes after it is loaded and
// is safe for concurrent use.
type PriceTable struct {
	models []tableModel // in table order, which is the order match rules are tried in
	byID   map[string]int
}

type tableModel struct {
	price Price
	match *matchRule
}

var defaultPrices = sync.OnceValue(func() *PriceTable {
	t, err := LoadPrices(bytes.NewReader(embeddedPrices))
	if err != nil {
		// Tests load the embedded table, so this only happens to a broken build.
		slog.Error("finops: embedded price table does not load", "err", err)
		return &PriceTable{}
	}
	return t
})

// DefaultPrices returns the table embedded in the binary, parsed on first use.
// Should the embedded table not parse, it is empty and every lookup misses.
func DefaultPrices() *PriceTable {
	return defaultPrices()
}

// Lookup finds the price of model: the entry whose id is model; else the first
// entry, in table order, whose match rules accept model; else the entry with the
// longest id that model extends with "-" (an unlisted dated snapshot). The
// Price is the caller's to keep.
func (t *PriceTable) Lookup(model string) (Price, bool) {
	i, ok := t.find(model)
	if !ok {
		return Price{}, false
	}
	p := t.models[i].price
	p.Tiers = slices.Clone(p.Tiers)
	return p, true
}

// Cost returns what a request to model with the token counts tok costs, in USD,
// long-context tier included. It returns ErrUnknownModel if Lookup does not know
// model and ErrNegativeTokens for a negative count.
func (t *PriceTable) Cost(model string, tok Tokens) (float64, error) {
	i, ok := t.find(model)
	if !ok {
		return 0, fmt.Errorf("%w: %.100q", ErrUnknownModel, model)
	}
	return t.models[i].price.Cost(tok)
}

func (t *PriceTable) find(model string) (int, bool) {
	if t == nil || model == "" || len(model) > maxModelID {
		return 0, false
	}
	if i, ok := t.byID[model]; ok {
		return i, true
	}
	for i := range t.models {
		if m := t.models[i].match; m != nil && m.matches(model) {
			return i, true
		}
	}

	best, bestLen := 0, 0
	for i := range t.models {
		id := t.models[i].price.Model
		if len(id) > bestLen && strings.HasPrefix(model, id+"-") {
			best, bestLen = i, len(id)
		}
	}
	return best, bestLen > 0
}

// tableFile is the JSON format of a price table.
type tableFile struct {
	About    string       `json:"about"`
	Source   string       `json:"source"`
	PricesOn string       `json:"prices_on"`
	Models   []modelEntry `json:"models"`
}

type modelEntry struct {
	ID       string     `json:"id"`
	Provider string     `json:"provider"`
	Match    *matchRule `json:"match,omitempty"`
	rateEntry
	Tiers []tierEntry `json:"tiers,omitempty"`
}

type tierEntry struct {
	Above int `json:"above"`
	rateEntry
}

// rateEntry holds the rates as written; nil means left out.
type rateEntry struct {
	Input        *float64 `json:"input,omitempty"`
	CacheWrite5m *float64 `json:"cache_write_5m,omitempty"`
	CacheWrite1h *float64 `json:"cache_write_1h,omitempty"`
	CacheRead    *float64 `json:"cache_read,omitempty"`
	Output       *float64 `json:"output,omitempty"`
}

// LoadPrices reads a price table in the format described in the package
// documentation. It returns an error matching ErrInvalidTable for a file over
// MaxPriceTableBytes, malformed JSON, an unknown field, a table without models, an
// empty, over-long or repeated id, a negative rate, an invalid match rule, or
// tiers not in strictly ascending order of a positive threshold.
func LoadPrices(r io.Reader) (*PriceTable, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxPriceTableBytes+1))
	if err != nil {
		return nil, fmt.Errorf("finops: read price table: %w", err)
	}
	if len(data) > MaxPriceTableBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidTable, MaxPriceTableBytes)
	}

	var file tableFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidTable, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the table", ErrInvalidTable)
	}
	if len(file.Models) == 0 {
		return nil, fmt.Errorf("%w: no models", ErrInvalidTable)
	}

	t := &PriceTable{byID: make(map[string]int, len(file.Models))}
	for i := range file.Models {
		e := &file.Models[i]
		m, err := e.toModel()
		if err != nil {
			return nil, fmt.Errorf("%w: model %d (%.100q): %w", ErrInvalidTable, i, e.ID, err)
		}
		if _, dup := t.byID[e.ID]; dup {
			return nil, fmt.Errorf("%w: model id %.100q repeats", ErrInvalidTable, e.ID)
		}
		t.byID[e.ID] = len(t.models)
		t.models = append(t.models, m)
	}
	return t, nil
}

// toModel validates e and resolves its rates.
func (e *modelEntry) toModel() (tableModel, error) {
	switch {
	case e.ID == "":
		return tableModel{}, errors.New("empty id")
	case len(e.ID) > maxModelID:
		return tableModel{}, fmt.Errorf("id longer than %d bytes", maxModelID)
	case len(e.Provider) > maxModelID:
		return tableModel{}, fmt.Errorf("provider longer than %d bytes", maxModelID)
	}
	if e.Match != nil {
		if err := e.Match.compile(1); err != nil {
			return tableModel{}, err
		}
	}
	if err := e.rateEntry.validate(); err != nil {
		return tableModel{}, err
	}

	p := Price{
		Model:    e.ID,
		Provider: e.Provider,
		Rates:    resolveRates(e.rateEntry, rateEntry{}, e.Provider),
	}
	for i, te := range e.Tiers {
		if te.Above <= 0 || (i > 0 && te.Above <= e.Tiers[i-1].Above) {
			return tableModel{}, errors.New("tiers need positive thresholds in ascending order")
		}
		if err := te.rateEntry.validate(); err != nil {
			return tableModel{}, err
		}
		p.Tiers = append(p.Tiers, Tier{
			Above: te.Above,
			Rates: resolveRates(te.rateEntry, e.rateEntry, e.Provider),
		})
	}
	return tableModel{price: p, match: e.Match}, nil
}

// validate refuses negative rates.
func (e rateEntry) validate() error {
	for _, v := range []*float64{e.Input, e.CacheWrite5m, e.CacheWrite1h, e.CacheRead, e.Output} {
		if v != nil && *v < 0 {
			return fmt.Errorf("negative rate %g", *v)
		}
	}
	return nil
}

// resolveRates fills in the rates e leaves out, by the rules in the package
// documentation. base is the model's own entry when e is a tier, else empty.
func resolveRates(e, base rateEntry, provider string) Rates {
	r := Rates{
		Input:  firstOf(0, e.Input, base.Input),
		Output: firstOf(0, e.Output, base.Output),
	}
	if provider == "anthropic" {
		r.CacheWrite5m = firstOf(1.25*r.Input, e.CacheWrite5m, base.CacheWrite5m)
		r.CacheWrite1h = firstOf(2*r.Input, e.CacheWrite1h, base.CacheWrite1h)
		r.CacheRead = firstOf(0.1*r.Input, e.CacheRead, base.CacheRead)
		return r
	}
	r.CacheWrite5m = firstOf(r.Input, e.CacheWrite5m, base.CacheWrite5m)
	r.CacheWrite1h = firstOf(r.CacheWrite5m, e.CacheWrite1h, base.CacheWrite1h)
	r.CacheRead = firstOf(r.Input, e.CacheRead, base.CacheRead)
	return r
}

// firstOf returns the first of vals that is set, else def.
func firstOf(def float64, vals ...*float64) float64 {
	for _, v := range vals {
		if v != nil {
			return *v
		}
	}
	return def
}
