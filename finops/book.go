package finops

import (
	"fmt"
	"math"
	"slices"
)

// Lever names a way the server saves money against a stateless client. Savings
// are booked per lever, so a report can say what each one was worth.
type Lever string

// The levers. A turn's savings always add up to its naive cost minus its cost:
// what is not booked to another lever is booked to caching.
const (
	// LeverCaching is the provider's prompt cache: prompt tokens read (or written)
	// at the cache's rates instead of the full input rate.
	LeverCaching Lever = "caching"
	// LeverRollup is summarizing old turns: tokens of the log a request left out
	// because a summary stands in for them, less what the summaries cost.
	LeverRollup Lever = "rollup"
	// LeverRationing is leaving old or repeated tool output out of the prompt.
	LeverRationing Lever = "rationing"
	// LeverRouting is answering with a cheaper model than the session's own.
	LeverRouting Lever = "routing"
	// LeverSemanticCache is answering from a cache of earlier answers.
	LeverSemanticCache Lever = "semantic_cache"
)

// Booking is what one provider call is booked at: what it cost, what a naive
// stateless client would have paid for the same result, and the difference split
// by lever. The savings add up to NaiveCostUSD - CostUSD.
type Booking struct {
	CostUSD      float64 `json:"cost_usd"`
	NaiveCostUSD float64 `json:"naive_cost_usd"`
	// SavingsUSD is the saving of each lever; negative where a lever cost more
	// than it saved on this call (a cache write costs more than plain input).
	SavingsUSD map[Lever]float64 `json:"savings_usd,omitempty"`
}

// CostFunc prices the token counts of one call to one model, in USD.
type CostFunc func(Tokens) (float64, error)

// BookTurn books an answer to a turn. tok is the usage the provider reported;
// elided is, per lever, the prompt tokens of the session's log that the request
// left out (nil when none: the request held the whole conversation).
//
// A naive stateless client sends the whole conversation every turn with no cache
// hints: its cost is every prompt token of the request, plus the elided ones, as
// uncached input, and the same output. The savings are split by telescoping: each
// lever in name order is booked the naive cost of the request with its tokens
// minus without them, and caching the naive cost of the request as sent minus
// its cost, so they always add up to the difference.
func BookTurn(cost CostFunc, tok Tokens, elided map[Lever]int) (Booking, error) {
	actual, err := cost(tok)
	if err != nil {
		return Booking{}, err
	}
	naiveOf := func(extra int) (float64, error) {
		return cost(Tokens{Input: tok.Prompt() + extra, Output: tok.Output})
	}
	levers := make([]Lever, 0, len(elided))
	extra := 0
	for lv, n := range elided {
		if n < 0 {
			return Booking{}, fmt.Errorf("%w: %d elided tokens for %s", ErrNegativeTokens, n, lv)
		}
		if n > 0 && lv != LeverCaching {
			levers = append(levers, lv)
			extra += n
		}
	}
	slices.Sort(levers)

	b := Booking{CostUSD: actual, SavingsUSD: make(map[Lever]float64, len(levers)+1)}
	if b.NaiveCostUSD, err = naiveOf(extra); err != nil {
		return Booking{}, err
	}
	upper := b.NaiveCostUSD
	for _, lv := range levers {
		extra -= elided[lv]
		lower, err := naiveOf(extra)
		if err != nil {
			return Booking{}, err
		}
		b.SavingsUSD[lv] = round(upper - lower)
		upper = lower
	}
	b.SavingsUSD[LeverCaching] = round(upper - actual)
	return b, nil
}

// BookOverhead books a call the server makes on its own account to save money
// later, such as the summary of a rollup: no client would have made it, so its
// naive cost is 0 and its whole cost is booked as a negative saving of lever.
func BookOverhead(cost CostFunc, tok Tokens, lever Lever) (Booking, error) {
	actual, err := cost(tok)
	if err != nil {
		return Booking{}, err
	}
	return Booking{CostUSD: actual, SavingsUSD: map[Lever]float64{lever: -actual}}, nil
}

// CostIn returns the CostFunc of model in t.
func (t *PriceTable) CostIn(model string) CostFunc {
	return func(tok Tokens) (float64, error) { return t.Cost(model, tok) }
}

// round drops the floating-point dust of a difference of costs (below a
// billionth of a dollar), so that a saving of zero prints as 0.
func round(usd float64) float64 {
	return math.Round(usd*1e12) / 1e12
}
