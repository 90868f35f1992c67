package openai

import (
	"fmt"
	"sort"
	"strings"
)

// Compat says how a server that speaks Chat Completions differs from the OpenAI
// API in what matters here: the name of the output limit, the cache fields it
// takes, whether it reports usage when streaming and where its usage keeps each
// count. Presets holds the known servers; Config.Compat nil means the OpenAI API.
type Compat struct {
	// MaxTokensField names the body field of the request's MaxTokens:
	// "max_completion_tokens" (the OpenAI API, where max_tokens is deprecated and
	// refused by reasoning models) or "max_tokens" (servers that predate it).
	MaxTokensField string
	// SendCacheKey sends the cache plan's Key as prompt_cache_key.
	SendCacheKey bool
	// SendCacheRetention sends the cache plan's Retention as prompt_cache_retention.
	SendCacheRetention bool
	// IncludeUsage asks for usage in the last chunk (stream_options.include_usage).
	// Without it the answer's usage is estimated by the session.
	IncludeUsage bool
	// Usage names the fields of the server's usage object.
	Usage UsageFields
}

// UsageFields names where a usage object keeps each count, as dotted paths inside
// "usage" (for example "prompt_tokens_details.cached_tokens"). An empty Cached or
// CacheWrite means the server does not report that count.
type UsageFields struct {
	// Prompt is all prompt tokens, cached ones included.
	Prompt string
	// Completion is the generated tokens.
	Completion string
	// Cached is the prompt tokens read from the cache, a part of Prompt.
	Cached string
	// CacheWrite is the prompt tokens written to the cache, a part of Prompt
	// disjoint from Cached.
	CacheWrite string
}

// openAIUsage is the usage object of the OpenAI API.
var openAIUsage = UsageFields{
	Prompt:     "prompt_tokens",
	Completion: "completion_tokens",
	Cached:     "prompt_tokens_details.cached_tokens",
	CacheWrite: "prompt_tokens_details.cache_write_tokens",
}

// presets are the Compat settings of the servers Preset knows.
var presets = map[string]Compat{
	"openai": {
		MaxTokensField: "max_completion_tokens", SendCacheKey: true,
		SendCacheRetention: true, IncludeUsage: true, Usage: openAIUsage,
	},
	"vllm":     localServer(),
	"llamacpp": localServer(),
	"ollama":   localServer(),
}

// localServer is what vLLM, llama.cpp and Ollama have in common.
func localServer() Compat {
	return Compat{
		MaxTokensField: "max_tokens",
		IncludeUsage:   true,
		Usage: UsageFields{
			Prompt:     "prompt_tokens",
			Completion: "completion_tokens",
			Cached:     "prompt_tokens_details.cached_tokens",
		},
	}
}

// Preset returns the Compat settings of a server this adapter knows, or an error
// listing the known names:
//
//   - "openai": the OpenAI API. max_completion_tokens, prompt_cache_key,
//     prompt_cache_retention, usage with cached_tokens and cache_write_tokens.
//   - "vllm": vLLM's OpenAI-compatible server. max_tokens; no cache fields (it
//     caches prefixes by itself and ignores them); cached_tokens only when the
//     server runs with --enable-prompt-tokens-details.
//   - "llamacpp": llama.cpp's llama-server. max_tokens; no cache fields (it reuses
//     a slot's prefix by itself); cached_tokens in recent versions.
//   - "ollama": Ollama's /v1 endpoint. max_tokens; no cache fields; cached_tokens
//     only in recent versions.
//
// A server that leaves out a count reports 0 for it, which is also the truth for
// a server without a cache: the prompt then counts as uncached input.
func Preset(name string) (Compat, error) {
	c, ok := presets[name]
	if !ok {
		names := make([]string, 0, len(presets))
		for n := range presets {
			names = append(names, n)
		}
		sort.Strings(names)
		return Compat{}, fmt.Errorf("openai: unknown compat preset %q (known: %s)",
			name, strings.Join(names, ", "))
	}
	return c, nil
}

// Validate checks that c can be used: a known MaxTokensField and a Prompt and
// Completion path.
func (c *Compat) Validate() error {
	switch {
	case c.MaxTokensField != "max_completion_tokens" && c.MaxTokensField != "max_tokens":
		return fmt.Errorf("openai: compat: max tokens field %q: want max_completion_tokens "+
			"or max_tokens", c.MaxTokensField)
	case c.Usage.Prompt == "" || c.Usage.Completion == "":
		return fmt.Errorf("openai: compat: usage needs prompt and completion fields")
	}
	return nil
}
