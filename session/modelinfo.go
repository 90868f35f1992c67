package session

import "strings"

// modelInfo is what the layout needs to know of a model: whose prompt cache rules
// apply, how much the model can read, and what its cache takes.
type modelInfo struct {
	// anthropic: Anthropic's explicit breakpoints (at most four, a 20-block
	// lookback, 5-minute and 1-hour TTLs). Otherwise OpenAI's automatic prefix
	// caching with prompt_cache_key.
	anthropic bool
	// window is the context window in tokens: prompt and answer together.
	window int
	// minCache is, for Anthropic, the shortest prefix a breakpoint caches (a
	// shorter one is processed but not cached); for OpenAI, the shortest prompt
	// that is cached at all.
	minCache int
	// retention24h: the model takes prompt_cache_retention "24h" (OpenAI's
	// extended retention, billed as in-memory caching).
	retention24h bool
}

// Limits of the breakpoint rules of Anthropic's prompt cache ("Prompt caching",
// platform.claude.com): at most four cache_control breakpoints per request, and a
// read that walks back at most 20 content blocks from a breakpoint.
const (
	maxBreakpoints = 4
	lookbackBlocks = 20
)

// Default context windows of models the table does not know: every current Claude
// model reads 200,000 tokens; 128,000 is the smallest window of a current OpenAI
// chat model, so an unknown model is never sent more than it can take.
const (
	defaultAnthropicWindow = 200000
	defaultOpenAIWindow    = 128000
)

// modelTable holds the documented figures by model ID prefix; the longest matching
// prefix wins ("claude-sonnet-4-5-20250929" finds "claude-sonnet-4-5").
//
// Anthropic: minimum cacheable lengths from "Prompt caching" (1024 tokens for
// Sonnet 4.5, Sonnet 4, Opus 4.1, Opus 4 and Sonnet 3.7; 2048 for Haiku 3.5 and
// Haiku 3; 4096 for Opus 4.6, Opus 4.5 and Haiku 4.5), context windows from
// "Models overview" (200K; the 1M window of Sonnet 4 and 4.5 is a beta that a
// request must ask for, and the layout never does).
// OpenAI: caching starts at 1024 tokens ("Prompt caching"); windows from each
// model's page; extended retention on GPT-4.1 and the GPT-5 family.
var modelTable = map[string]modelInfo{
	"claude-opus-4-6":   {anthropic: true, window: 200000, minCache: 4096},
	"claude-opus-4-5":   {anthropic: true, window: 200000, minCache: 4096},
	"claude-haiku-4-5":  {anthropic: true, window: 200000, minCache: 4096},
	"claude-sonnet-4-5": {anthropic: true, window: 200000, minCache: 1024},
	"claude-opus-4-1":   {anthropic: true, window: 200000, minCache: 1024},
	"claude-opus-4":     {anthropic: true, window: 200000, minCache: 1024},
	"claude-sonnet-4":   {anthropic: true, window: 200000, minCache: 1024},
	"claude-3-7-sonnet": {anthropic: true, window: 200000, minCache: 1024},
	"claude-3-5-haiku":  {anthropic: true, window: 200000, minCache: 2048},
	"claude-3-haiku":    {anthropic: true, window: 200000, minCache: 2048},
	"gpt-4o":            {window: 128000, minCache: 1024},
	"gpt-4o-mini":       {window: 128000, minCache: 1024},
	"gpt-4.1":           {window: 1047576, minCache: 1024, retention24h: true},
	"gpt-5":             {window: 400000, minCache: 1024, retention24h: true},
	"o1":                {window: 200000, minCache: 1024},
	"o3":                {window: 200000, minCache: 1024},
	"o4-mini":           {window: 200000, minCache: 1024},
}

// modelInfoFor returns the figures of model: from the table by longest prefix,
// else the defaults of its family (claude-* is Anthropic, anything else OpenAI).
func modelInfoFor(model string) modelInfo {
	best := ""
	for key := range modelTable {
		if len(key) > len(best) && strings.HasPrefix(model, key) {
			best = key
		}
	}
	if best != "" {
		return modelTable[best]
	}
	if strings.HasPrefix(model, "claude-") {
		return modelInfo{anthropic: true, window: defaultAnthropicWindow, minCache: 1024}
	}
	return modelInfo{window: defaultOpenAIWindow, minCache: 1024}
}

// MinCacheTokens returns the shortest prompt prefix the provider caches for
// model: Anthropic's minimum cacheable length per model, OpenAI's 1024 tokens.
// Unknown models get 1024.
func MinCacheTokens(model string) int { return modelInfoFor(model).minCache }

// modelInfo returns the figures of model with the configured window overrides.
func (m *Manager) modelInfo(model string) modelInfo {
	mi := modelInfoFor(model)
	best := ""
	for key, w := range m.cfg.ContextWindows {
		if len(key) >= len(best) && strings.HasPrefix(model, key) && w > 0 {
			best, mi.window = key, w
		}
	}
	return mi
}
