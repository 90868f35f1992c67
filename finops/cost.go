package finops

import "fmt"

// Tokens counts the tokens of one request by how they are billed. The categories
// are disjoint: every token counts in exactly one of them.
//
//   - Input: prompt tokens neither read from nor written to the cache. Anthropic
//     reports them as input_tokens; for OpenAI they are prompt_tokens minus
//     cached_tokens.
//   - CacheWrite5m, CacheWrite1h: prompt tokens written to the cache with a
//     5-minute or a 1-hour lifetime (Anthropic's cache_creation).
//   - CacheRead: prompt tokens read from the cache (Anthropic's
//     cache_read_input_tokens, OpenAI's cached_tokens).
//   - Output: generated tokens, reasoning included.
type Tokens struct {
	Input        int `json:"input_tokens"`
	CacheWrite5m int `json:"cache_write_5m_tokens"`
	CacheWrite1h int `json:"cache_write_1h_tokens"`
	CacheRead    int `json:"cache_read_tokens"`
	Output       int `json:"output_tokens"`
}

// Prompt returns the prompt tokens of the request, all input categories summed.
// The long-context tier of a model depends on it.
func (t Tokens) Prompt() int {
	return t.Input + t.CacheWrite5m + t.CacheWrite1h + t.CacheRead
}

// Total returns every token of the request, prompt and output: what a token
// budget counts.
func (t Tokens) Total() int {
	return t.Prompt() + t.Output
}

// Add returns the sum of t and u, category by category.
func (t Tokens) Add(u Tokens) Tokens {
	return Tokens{
		Input:        t.Input + u.Input,
		CacheWrite5m: t.CacheWrite5m + u.CacheWrite5m,
		CacheWrite1h: t.CacheWrite1h + u.CacheWrite1h,
		CacheRead:    t.CacheRead + u.CacheRead,
		Output:       t.Output + u.Output,
	}
}

// Cost returns what a request with the token counts tok costs at p, in USD: every
// category at the rates of the tier its prompt falls in (see RatesFor). It returns
// ErrNegativeTokens for a negative count.
func (p Price) Cost(tok Tokens) (float64, error) {
	counts := []int{tok.Input, tok.CacheWrite5m, tok.CacheWrite1h, tok.CacheRead, tok.Output}
	for _, n := range counts {
		if n < 0 {
			return 0, fmt.Errorf("%w: %+v", ErrNegativeTokens, tok)
		}
	}

	r := p.RatesFor(tok.Prompt())
	perMillion := float64(tok.Input)*r.Input +
		float64(tok.CacheWrite5m)*r.CacheWrite5m +
		float64(tok.CacheWrite1h)*r.CacheWrite1h +
		float64(tok.CacheRead)*r.CacheRead +
		float64(tok.Output)*r.Output
	return perMillion / 1e6, nil
}
