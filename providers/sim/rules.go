package sim

import (
	"strings"
	"time"
)

// Family says whose caching rules a model follows.
type Family int

const (
	// FamilyAnthropic: explicit cache_control breakpoints, a write only at a
	// breakpoint, a read that looks back a bounded number of blocks.
	FamilyAnthropic Family = iota + 1
	// FamilyOpenAI: automatic caching of the prompt's prefix, and on newer models
	// explicit prompt_cache_breakpoint marks as well.
	FamilyOpenAI
)

// Rules are one model's prompt caching rules, as the provider documents them.
// The table of them (DefaultRules) is data: each entry cites where its values
// come from, and Options.Rules replaces it.
type Rules struct {
	// Family says which provider's rules these are. An endpoint that receives a
	// model whose rules are of the other family (a gpt-* model on /v1/messages)
	// uses its own provider's defaults.
	Family Family

	// MinCacheTokens is the shortest prefix that is cached: for Anthropic and for
	// OpenAI breakpoints, the shortest prefix a breakpoint writes (a shorter one
	// is processed but not cached, without an error); for OpenAI automatic
	// caching, the shortest prompt that is cached at all.
	MinCacheTokens int
	// MaxBreakpoints is, for Anthropic, how many blocks may carry cache_control
	// in one request, the top-level automatic one included; one more is a 400.
	// For OpenAI breakpoint models, how many breakpoints one request writes, the
	// implicit one included; further explicit ones are not written (no error).
	MaxBreakpoints int
	// LookbackBlocks is how many blocks before a breakpoint an Anthropic read
	// looks for an existing entry. Zero: no limit (OpenAI breakpoint models).
	LookbackBlocks int
	// ShortTTL and LongTTL are the lifetimes a breakpoint may ask for (Anthropic
	// "5m" and "1h"; OpenAI "30m" and "12h"); ShortTTL is the default. An entry
	// lives that long after its last use. Zero LongTTL: the long one is refused.
	ShortTTL, LongTTL time.Duration

	// CacheStep, for OpenAI automatic caching, is the granularity of a hit: the
	// cached part is a multiple of it (128). Zero on breakpoint models, whose
	// hits end exactly at a breakpoint.
	CacheStep int
	// IdleTTL is how long an OpenAI automatic cache entry lives without being
	// used under the in_memory retention.
	IdleTTL time.Duration
	// ExtendedTTL is how long an OpenAI cache entry lives under
	// prompt_cache_retention "24h". Zero: the model refuses "24h".
	ExtendedTTL time.Duration
	// ExtendedOnly says the model refuses prompt_cache_retention "in_memory".
	ExtendedOnly bool
	// Breakpoints says the model honours prompt_cache_breakpoint marks and
	// prompt_cache_options; other OpenAI models ignore both.
	Breakpoints bool

	// ReportsWrites says the usage reports cache writes (Anthropic
	// cache_creation_input_tokens; OpenAI cache_write_tokens).
	ReportsWrites bool
	// WriteMultiplier and LongWriteMultiplier are the price of a token written
	// with ShortTTL and LongTTL, as a multiple of the input price (1: no
	// surcharge; 0: not published). ReadMultiplier is the price of a cache read.
	// The simulator does not price; these are here so the table says everything
	// the provider documents about a model's cache in one place.
	WriteMultiplier, LongWriteMultiplier, ReadMultiplier float64
}

// anthropicRules returns Anthropic rules with the given minimum.
//
// Anthropic prompt caching docs (platform.claude.com/docs/en/build-with-claude/
// prompt-caching): at most 4 cache_control blocks, the top-level automatic one
// included; a read checks the breakpoint and at most 20 blocks before it; "5m"
// (default) and "1h" TTLs, refreshed at no cost on every hit; prompts shorter
// than the model's minimum are processed without caching; cache writes cost
// 1.25x the input price for 5 minutes and 2x for 1 hour, reads 0.1x.
func anthropicRules(minTokens int) Rules {
	return Rules{
		Family:              FamilyAnthropic,
		MinCacheTokens:      minTokens,
		MaxBreakpoints:      4,
		LookbackBlocks:      20,
		ShortTTL:            5 * time.Minute,
		LongTTL:             time.Hour,
		ReportsWrites:       true,
		WriteMultiplier:     1.25,
		LongWriteMultiplier: 2,
		ReadMultiplier:      0.1,
	}
}

// openaiRules returns the rules of an OpenAI model before GPT-5.6.
//
// OpenAI prompt caching guide (developers.openai.com/api/docs/guides/
// prompt-caching) and the Prompt Caching 201 cookbook: caching is automatic for
// prompts of 1024 tokens or more and hits come in increments of 128 tokens;
// in_memory retention keeps a prefix for 5 to 10 minutes of inactivity (we take
// 10, refreshed on every use); "24h" retention, on the models that offer it
// (gpt-5.4, 5.2, 5.1, gpt-5, gpt-4.1 and their variants), up to 24 hours; writes
// cost nothing extra and are not reported. read is the cached input price over
// the input price, from the provider's price list (finops/prices.json).
func openaiRules(read float64, extended bool) Rules {
	r := Rules{
		Family:              FamilyOpenAI,
		MinCacheTokens:      1024,
		CacheStep:           128,
		IdleTTL:             10 * time.Minute,
		WriteMultiplier:     1,
		LongWriteMultiplier: 1,
		ReadMultiplier:      read,
	}
	if extended {
		r.ExtendedTTL = 24 * time.Hour
	}
	return r
}

// openaiBreakpointRules returns the rules of GPT-5.6 and later.
//
// OpenAI prompt caching guide and API reference (prompt_cache_options,
// prompt_cache_breakpoint): explicit breakpoints mark the exact end of a
// reusable prefix, not rounded to a token block; by default OpenAI adds one
// implicit breakpoint and writes it and up to the latest three explicit ones
// (mode "explicit": no implicit one, up to the latest four); matching considers
// earlier breakpoints without a content-block lookback limit; breakpoint TTLs
// are "30m" (default) and "12h", minimum lifetimes; writes cost 1.25x the input
// price and are reported in cache_write_tokens; prompt_cache_retention accepts
// only "24h" on gpt-5.5 and later.
func openaiBreakpointRules(read float64) Rules {
	return Rules{
		Family:          FamilyOpenAI,
		MinCacheTokens:  1024,
		MaxBreakpoints:  4,
		ShortTTL:        30 * time.Minute,
		LongTTL:         12 * time.Hour,
		IdleTTL:         30 * time.Minute,
		ExtendedTTL:     24 * time.Hour,
		ExtendedOnly:    true,
		Breakpoints:     true,
		ReportsWrites:   true,
		WriteMultiplier: 1.25,
		ReadMultiplier:  read,
	}
}

// DefaultRules returns a copy of the built-in table, keyed by model ID or model
// ID prefix.
//
// Anthropic minimum cacheable lengths, from the prompt caching page's table: 4096
// tokens for Claude Opus 4.6, Opus 4.5 and Haiku 4.5; 2048 for Opus 4.7, Haiku
// 3.5 and Haiku 3; 1024 for Opus 4.8, Sonnet 4.6, Sonnet 4.5, Opus 4.1, Opus 4,
// Sonnet 4 and Sonnet 3.7; 512 for Opus 5, Sonnet 5 and Fable 5.
func DefaultRules() map[string]Rules {
	extended := openaiRules(0.25, true)
	return map[string]Rules{
		"claude-opus-5":     anthropicRules(512),
		"claude-sonnet-5":   anthropicRules(512),
		"claude-fable-5":    anthropicRules(512),
		"claude-opus-4-8":   anthropicRules(1024),
		"claude-opus-4-7":   anthropicRules(2048),
		"claude-opus-4-6":   anthropicRules(4096),
		"claude-opus-4-5":   anthropicRules(4096),
		"claude-haiku-4-5":  anthropicRules(4096),
		"claude-sonnet-4-6": anthropicRules(1024),
		"claude-sonnet-4-5": anthropicRules(1024),
		"claude-opus-4-1":   anthropicRules(1024),
		"claude-opus-4":     anthropicRules(1024),
		"claude-sonnet-4":   anthropicRules(1024),
		"claude-3-7-sonnet": anthropicRules(1024),
		"claude-3-5-haiku":  anthropicRules(2048),
		"claude-3-haiku":    anthropicRules(2048),
		"gpt-4o":            openaiRules(0.5, false),
		"gpt-4.1":           extended,
		"gpt-5":             openaiRules(0.1, true),
		"gpt-5.5":           withExtendedOnly(openaiRules(0.1, true)),
		"gpt-5.6":           openaiBreakpointRules(0.1),
		"gpt-5-5":           withExtendedOnly(openaiRules(0.1, true)),
		"gpt-5-6":           openaiBreakpointRules(0.1),
		"o1":                openaiRules(0.5, false),
		"o3":                openaiRules(0.25, false),
		"o4-mini":           openaiRules(0.25, false),
	}
}

func withExtendedOnly(r Rules) Rules {
	r.ExtendedOnly = true
	return r
}

// defaultAnthropic and defaultOpenAI are the rules of models the table does not
// know: Anthropic rules for claude-* models, OpenAI rules for the others.
var (
	defaultAnthropic = anthropicRules(1024)
	defaultOpenAI    = openaiRules(0.5, false)
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

// anthropicRulesFor returns the Anthropic rules for model, with unset limits
// taken from the defaults.
func anthropicRulesFor(table map[string]Rules, model string) Rules {
	r := lookupRules(table, model)
	if r.Family != FamilyAnthropic {
		return defaultAnthropic
	}
	if r.MaxBreakpoints <= 0 {
		r.MaxBreakpoints = defaultAnthropic.MaxBreakpoints
	}
	if r.ShortTTL <= 0 {
		r.ShortTTL = defaultAnthropic.ShortTTL
	}
	return r
}

// openaiRulesFor returns the OpenAI rules for model, with unset limits taken
// from the defaults.
func openaiRulesFor(table map[string]Rules, model string) Rules {
	r := lookupRules(table, model)
	if r.Family != FamilyOpenAI {
		return defaultOpenAI
	}
	if r.IdleTTL <= 0 {
		r.IdleTTL = defaultOpenAI.IdleTTL
	}
	if r.Breakpoints {
		if r.MaxBreakpoints <= 0 {
			r.MaxBreakpoints = 4
		}
		if r.ShortTTL <= 0 {
			r.ShortTTL = r.IdleTTL
		}
		return r
	}
	if r.CacheStep <= 0 {
		r.CacheStep = defaultOpenAI.CacheStep
	}
	return r
}
