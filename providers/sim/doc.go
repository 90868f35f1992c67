// Package sim is the provider simulator: an HTTP server that speaks the Anthropic
// Messages API (POST /v1/messages) and the OpenAI Chat Completions API
// (POST /v1/chat/completions) closely enough that the real adapters cannot tell it
// from the providers, and that emulates their prompt caching so that what the
// product saves can be measured against it.
//
// What it emulates, per provider:
//
//   - Anthropic: explicit cache_control breakpoints (at most four, counting the
//     top-level automatic one), a write only at a breakpoint, keyed by the whole
//     prefix up to it (tools, system, messages, model); a read that walks back at
//     most 20 blocks from each breakpoint; per-model minimum cacheable lengths; 5
//     minute and 1 hour TTLs refreshed on every hit; the usage fields input_tokens,
//     cache_creation_input_tokens (split by TTL in cache_creation) and
//     cache_read_input_tokens, which are disjoint and sum to the prompt.
//   - OpenAI: automatic caching of prompts of 1024 tokens or more, hits in steps of
//     128 tokens, one cache per API key and prompt_cache_key, entries that expire
//     after 10 minutes without use; usage.prompt_tokens_details.cached_tokens.
//
// Each API key has its own cache, shared by every request with that key, as one
// organization's requests share the provider's cache.
//
// Token counts use providers.CountTokens (o200k_base), not the providers' own
// tokenizers: what matters for measuring savings is that the same prompt always
// counts the same and that the cache arithmetic follows the providers' rules.
//
// Answers: a request whose conversation was recorded (see LoadReplies) gets the
// recorded assistant reply; any other gets deterministic generated text.
//
// Not emulated yet, and answered with 400 or ignored: image, document and
// thinking blocks (400), the OpenAI Responses API, OpenAI explicit cache
// breakpoints and cache writes of newer models, latency and fault injection.
// Nothing in the product depends on them today; each is a gap to close before
// the product uses the feature.
package sim
