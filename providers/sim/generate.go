package sim

import (
	"math/rand/v2"
	"strings"

	"github.com/stated-dev/stated/providers"
)

// vocabulary is the fixed word list generated answers are made of.
var vocabulary = [...]string{
	"the", "session", "server", "keeps", "each", "conversation", "and", "sends",
	"only", "what", "is", "new", "cache", "prefix", "stays", "stable", "across",
	"turns", "so", "provider", "reads", "it", "instead", "of", "writing", "again",
	"a", "request", "answer", "streams", "back", "to", "client", "while", "budget",
	"holds", "cost", "tokens", "are", "counted", "once", "when", "event", "arrives",
	"rollup", "summary", "replaces", "older", "history", "with", "shorter", "text",
	"model", "tool", "call", "result", "returns", "data", "for", "next", "step",
	"this", "means", "that", "every", "ledger", "records", "saved", "time", "quickly",
	"durable", "log", "resumes", "after", "restart", "without", "losing", "anything",
}

// generateText returns deterministic text for seed: two to five sentences of six
// to fourteen words from the vocabulary.
func generateText(seed uint64) string {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var b strings.Builder
	sentences := 2 + rng.IntN(4)
	for s := 0; s < sentences; s++ {
		if s > 0 {
			b.WriteByte(' ')
		}
		words := 6 + rng.IntN(9)
		for w := 0; w < words; w++ {
			word := vocabulary[rng.IntN(len(vocabulary))]
			if w == 0 {
				word = strings.ToUpper(word[:1]) + word[1:]
			} else {
				b.WriteByte(' ')
			}
			b.WriteString(word)
		}
		b.WriteByte('.')
	}
	return b.String()
}

// truncateTokens returns the longest prefix of s, cut at a character boundary,
// that counts at most maxTokens tokens, and whether it had to cut. The result is
// never empty when s is not: at worst it is the first character of s.
func truncateTokens(s string, maxTokens int) (string, bool) {
	if providers.CountTokens(s) <= maxTokens {
		return s, false
	}
	ends := make([]int, 0, len(s)) // ends[k] is where the first k+1 characters end
	for i := range s {
		if i > 0 {
			ends = append(ends, i)
		}
	}
	ends = append(ends, len(s))
	// Find the most characters whose prefix fits. The whole of s does not fit.
	lo, hi := 0, len(ends)-1 // ends[lo-1] fits (or lo is 0), ends[hi] does not
	for lo < hi {
		mid := (lo + hi) / 2
		if providers.CountTokens(s[:ends[mid]]) <= maxTokens {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return s[:ends[0]], true
	}
	return s[:ends[lo-1]], true
}
