package sim

import (
	"strings"
	"time"
)

// Rules are one model's prompt caching rules, as the provider documents them.
//
// A model uses Anthropic-style rules when MaxBreakpoints > 0 and OpenAI-style rules
// when CacheStep > 0. An endpoint that receives a model whose rules are of the
// other style (a gpt-* model on /v1/messages) uses its own provider's defaults.
type Rules struct {
	// MinCacheTokens is, for Anthropic, the shortest prefix a breakpoint caches
	// (shorter prefixes are processed but not cached, without an error); for
	// OpenAI, the shortest prompt that is cached at all.
	MinCacheTokens int
	// MaxBreakpoints is how many blocks may carry cache_control in one request,
	// the top-level automatic one included (Anthropic: 4).
	MaxBreakpoints int
	// LookbackBlocks is how many blocks before a breakpoint a read looks for an
	// existing entry (Anthropic: 20).
	LookbackBlocks int
	// TTL5m and TTL1h say which cache_control ttl values the model accepts.
	TTL5m bool
	TTL1h bool
	// CacheStep is the granularity of an OpenAI cache hit: the cached part is a
	// multiple of it (128).
	CacheStep int
	// IdleTTL is how long an OpenAI cache entry lives without being used.
	IdleTTL time.Duration
}

// anthropicRules returns Anthropic-style rules with the given minimum.
//
// Anthropic prompt caching docs (platform.claude.com, "Prompt caching"): at most 4
// cache_control breakpoints; a read checks the breakpoint and up to 20 blocks
// before it; "5m" (default) and "1h" TTLs, refreshed at no cost on every hit;
// prompts shorter than the model's minimum are not cached.
func anthropicRules(minTokens int) Rules {
	return Rules{
		MinCacheTokens: minTokens,
		MaxBreakpoints: 4,
		LookbackBlocks: 20,
		TTL5m:          true,
		TTL1h:          true,
	}
}

// openaiRules returns OpenAI-style rules.
//
// OpenAI prompt caching guide (developers.openai.com, "Prompt caching"): caching
// is automatic for prompts of 1024 tokens or more, hits come in increments of 128
// tokens, and cached prefixes stay active for 5 to 10 minutes of inactivity (we
// take 10 minutes, refreshed on every use).
func openaiRules() Rules {
	return Rules{
		MinCacheTokens: 1024,
		CacheStep:      128,
		IdleTTL:        10 * time.Minute,
	}
}

// DefaultRules returns a copy of the built-in table, keyed by model ID or model ID
// prefix. Minimum cacheable lengths are the documented ones: 1024 tokens for
// Claude Sonnet 4.5, Sonnet 4, Opus 4.1, Opus 4 and Sonnet 3.7; 4096 for Claude
// Opus 4.6, Opus 4.5 and Haiku 4.5; 2048 for Claude Haiku 3.5 and Haiku 3.
func DefaultRules() map[string]Rules {
	return map[string]Rules{
		"claude-opus-4-6":   anthropicRules(4096),
		"claude-opus-4-5":   anthropicRules(4096),
		"claude-haiku-4-5":  anthropicRules(4096),
		"claude-sonnet-4-5": anthropicRules(1024),
		"claude-opus-4-1":   anthropicRules(1024),
		"claude-opus-4":     anthropicRules(1024),
		"claude-sonnet-4":   anthropicRules(1024),
		"claude-3-7-sonnet": anthropicRules(1024),
		"claude-3-5-haiku":  anthropicRules(2048),
		"claude-3-haiku":    anthropicRules(2048),
		"gpt-4o":            openaiRules(),
		"gpt-4.1":           openaiRules(),
		"gpt-5":             openaiRules(),
		"o1":                openaiRules(),
		"o3":                openaiRules(),
		"o4-mini":           openaiRules(),
	}
}

// defaultAnthropic and defaultOpenAI are the rules of models the table does not
// know: Anthropic-style for claude-* models, OpenAI-style for the others.
var (
	defaultAnthropic = anthropicRules(1024)
	defaultOpenAI    = openaiRules()
)

// lookupRules returns the rules of model: an exact key wins, else the longest key
// that is a prefix of model ("claude-sonnet-4-5-20250929" finds
// "claude-sonnet-4-5", not "claude-sonnet-4"), else the default by name.
func lookupRules(table map[string]Rules, model string) Rules {
	if r, ok := table[model]; ok {
		return r
	}
	best := ""
	for key := range table {
		if len(key) > len(best) && strings.HasPrefix(model, key) {
			best = key
		}
	}
	if best != "" {
		return table[best]
	}
	if strings.HasPrefix(model, "claude-") {
		return defaultAnthropic
	}
	return defaultOpenAI
}

// anthropicRulesFor returns the Anthropic-style rules for model.
func anthropicRulesFor(table map[string]Rules, model string) Rules {
	r := lookupRules(table, model)
	if r.MaxBreakpoints <= 0 {
		return defaultAnthropic
	}
	return r
}

// openaiRulesFor returns the OpenAI-style rules for model.
func openaiRulesFor(table map[string]Rules, model string) Rules {
	r := lookupRules(table, model)
	if r.CacheStep <= 0 {
		return defaultOpenAI
	}
	if r.IdleTTL <= 0 {
		r.IdleTTL = defaultOpenAI.IdleTTL
	}
	return r
}
