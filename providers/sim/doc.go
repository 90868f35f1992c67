// Package sim is the provider simulator: an HTTP server that speaks the Anthropic
// Messages API (POST /v1/messages), the OpenAI Chat Completions API
// (POST /v1/chat/completions) and the OpenAI Responses API (POST /v1/responses)
// closely enough that the official Go SDKs and the product's adapters cannot tell
// it from the providers, and that emulates their prompt caching so that what the
// product saves can be measured against it.
//
// What it emulates, per provider, by the rules table (DefaultRules, data with
// the documentation it comes from):
//
//   - Anthropic: explicit cache_control breakpoints (at most four, counting the
//     top-level automatic one; a fifth is a 400), a write only at a breakpoint,
//     keyed by the whole prefix up to it (tools, system, messages, model); a read
//     that walks back at most 20 blocks from each breakpoint; per-model minimum
//     cacheable lengths; 5 minute and 1 hour TTLs refreshed on every hit; the
//     usage fields input_tokens, cache_creation_input_tokens (split by TTL in
//     cache_creation) and cache_read_input_tokens, disjoint and summing to the
//     prompt. The API key is read from x-api-key or, as the official Go SDK
//     sends it, from a bearer Authorization header.
//   - OpenAI before GPT-5.6: automatic caching of prompts of 1024 tokens or more,
//     hits in steps of 128 tokens, one cache per API key, model and
//     prompt_cache_key; entries that expire after 10 idle minutes, or 24 hours
//     under prompt_cache_retention "24h" on the models that offer it;
//     cached_tokens, a part of the prompt tokens; writes are not reported.
//   - OpenAI GPT-5.6 and later: prompt_cache_breakpoint marks on content parts and
//     prompt_cache_options (mode implicit or explicit, ttl 30m or 12h); hits end
//     exactly at a breakpoint written before; one implicit breakpoint at the end
//     of the input and the latest three explicit ones are written (the latest
//     four in explicit mode); cache_write_tokens, a part of the prompt tokens
//     disjoint from cached_tokens, split by TTL in the Responses API.
//   - The Responses API's input items (message, function_call,
//     function_call_output), instructions, function tools, store and
//     previous_response_id (a response kept with store true continues; one with
//     store false or unknown is the API's 400 previous_response_not_found), and
//     its event stream with sequence numbers.
//
// Each API key has its own cache, shared by every request with that key, as one
// organization's requests share the provider's cache.
//
// For tests: a Clock (ManualClock, movable over HTTP with POST /_sim/clock), a
// latency model (Latency), faults injected by configuration or per request with
// the x-sim-fault header (Fault, FaultRule), and the capture of every request
// (Captured, Reset, GET /_sim/requests). docs/providers.md describes them.
//
// Token counts use providers.CountTokens (o200k_base), not the providers' own
// tokenizers: what matters for measuring savings is that the same prompt always
// counts the same and that the cache arithmetic follows the providers' rules.
//
// Answers: a request whose conversation was recorded (see LoadReplies) gets the
// recorded assistant reply; any other gets deterministic generated text.
//
// Not emulated, and answered with 400 or ignored: image, document and thinking
// blocks (400); Responses items other than messages and function calls
// (reasoning, item references: 400) and tools other than functions (400);
// OpenAI image, audio and file parts (skipped in Chat Completions, a 400 in
// Responses); the providers'
// rate limits as such (a 429 comes only from a fault); the OpenAI cache's
// routing by prefix hash and its 15 requests a minute per prefix; the
// Responses API's GET, cancel and input_items endpoints. Nothing in the product
// depends on them today.
package sim
