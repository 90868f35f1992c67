package sim

import (
	"slices"
	"time"
)

// openaiCacheParams are what a request asks of the OpenAI cache:
// prompt_cache_retention and prompt_cache_options.
type openaiCacheParams struct {
	retention string // "", "in_memory" or "24h"
	mode      string // "", "implicit" or "explicit"
	ttl       string // "", "30m" or "12h"
}

// openaiCacheUsage is how an OpenAI prompt's tokens split by cache state. The
// cached and written parts are disjoint and both within the prompt.
type openaiCacheUsage struct {
	cached     int // read from the cache: cached_tokens
	writeShort int // written with the short (default) TTL
	writeLong  int // written with the long TTL
}

func (u openaiCacheUsage) written() int { return u.writeShort + u.writeLong }

// checkOpenAICacheParams checks the cache parameters against the model's rules:
// a retention the model offers, and known prompt_cache_options values. Models
// without breakpoints ignore prompt_cache_options but its values must still be
// known ones.
func checkOpenAICacheParams(c openaiCacheParams, rules Rules) *apiError {
	switch {
	case c.retention != "" && c.retention != "in_memory" && c.retention != "24h":
		return chatInvalid("prompt_cache_retention", "invalid_value", "Invalid value: "+
			"'%s'. Supported values are: 'in_memory' and '24h'.", c.retention)
	case c.retention == "in_memory" && rules.ExtendedOnly,
		c.retention == "24h" && rules.ExtendedTTL <= 0:
		return chatInvalid("prompt_cache_retention", "unsupported_value",
			"prompt_cache_retention '%s' is not supported with this model.", c.retention)
	case c.mode != "" && c.mode != "implicit" && c.mode != "explicit":
		return chatInvalid("prompt_cache_options.mode", "invalid_value", "Invalid value: "+
			"'%s'. Supported values are: 'implicit' and 'explicit'.", c.mode)
	}
	return checkTTL("prompt_cache_options.ttl", c.ttl)
}

// checkBreakpoint checks a content part's prompt_cache_breakpoint.
func checkBreakpoint(param string, b *promptBreakpoint) *apiError {
	if b == nil {
		return nil
	}
	if b.Mode != "" && b.Mode != "explicit" {
		return chatInvalid(param+".mode", "invalid_value", "Invalid value: '%s'. "+
			"Supported values are: 'explicit'.", b.Mode)
	}
	return checkTTL(param+".ttl", b.TTL)
}

func checkTTL(param, ttl string) *apiError {
	if ttl != "" && ttl != "30m" && ttl != "12h" {
		return chatInvalid(param, "invalid_value", "Invalid value: '%s'. Supported "+
			"values are: '30m' and '12h'.", ttl)
	}
	return nil
}

// applyOpenAICache reads and writes the cache for one OpenAI request, by the
// model's rules: breakpoints on newer models, steps of 128 tokens on the others.
func (s *Server) applyOpenAICache(ns digest, q *tokenSeq, rules Rules,
	c openaiCacheParams) openaiCacheUsage {
	if rules.Breakpoints {
		return s.applyBreakpointCache(ns, q, rules, c)
	}
	ttl := rules.IdleTTL
	if c.retention == "24h" && rules.ExtendedTTL > 0 {
		ttl = rules.ExtendedTTL
	}
	return openaiCacheUsage{cached: s.applyStepCache(ns, q, rules, ttl)}
}

// stepKeys returns, for every cache step of the sequence (every multiple of
// rules.CacheStep from MinCacheTokens up to the total), the step's token count and
// its cache key. The key of a step commits to the chunk that contains the step's
// last token, whole: two prompts that share the first L tokens but differ later in
// that chunk miss at step L. That undercounts a hit by the steps inside one chunk
// (a chunk is a few dozen tokens, so one step at most as a rule), and only when
// two prompts diverge within a chunk of a step boundary.
func (q *tokenSeq) stepKeys(ns digest, rules Rules) ([]int, []cacheKey) {
	first := (rules.MinCacheTokens + rules.CacheStep - 1) / rules.CacheStep * rules.CacheStep
	first = max(first, rules.CacheStep)
	var steps []int
	var keys []cacheKey
	j := 0
	for l := first; l <= q.total; l += rules.CacheStep {
		for q.ends[j] < l {
			j++
		}
		steps = append(steps, l)
		keys = append(keys, entryKey(ns, q.prefix[j], l))
	}
	return steps, keys
}

// applyStepCache is automatic caching before GPT-5.6 and returns cached_tokens:
// the longest step of this prompt that an earlier request of the same namespace
// stored and that has not expired. Every step of the prompt is then stored (or
// refreshed) for ttl. Prompts shorter than MinCacheTokens are neither read nor
// stored. Writes are free and not reported.
func (s *Server) applyStepCache(ns digest, q *tokenSeq, rules Rules, ttl time.Duration) int {
	if q.total < rules.MinCacheTokens {
		return 0
	}
	steps, keys := q.stepKeys(ns, rules)
	now := s.clock.Now()
	s.cache.lock()
	defer s.cache.unlock()

	cached := 0
	for i := len(keys) - 1; i >= 0; i-- {
		if s.cache.hitLocked(keys[i], now) {
			cached = steps[i]
			break
		}
	}
	for _, k := range keys {
		s.cache.putLocked(k, ttl, now)
	}
	return cached
}

// applyBreakpointCache is caching on GPT-5.6 and later:
//
//   - Read: the longest prefix, ending at any content part, tool call or message
//     of this prompt, that an earlier request wrote at a breakpoint and that has
//     not expired; exact, not rounded. A hit refreshes the entry.
//   - Write: at the breakpoints the request writes (writePlan), each after the
//     hit and at least MinCacheTokens long, for its TTL. The tokens from the hit
//     to the last one written are cache_write_tokens, each segment booked at the
//     TTL of the breakpoint that ends it.
//   - In explicit mode without explicit breakpoints nothing is cached.
func (s *Server) applyBreakpointCache(ns digest, q *tokenSeq, rules Rules,
	c openaiCacheParams) openaiCacheUsage {
	var u openaiCacheUsage
	writes := q.writePlan(rules, c)
	if len(writes) == 0 && c.mode == "explicit" {
		return u
	}
	now := s.clock.Now()
	s.cache.lock()
	defer s.cache.unlock()

	hit := -1
	for i := len(q.bounds) - 1; i >= 0; i-- {
		if s.cache.hitLocked(entryKey(ns, q.prefix[q.bounds[i]], 0), now) {
			hit = q.bounds[i]
			u.cached = q.ends[hit]
			break
		}
	}
	done := u.cached
	for _, m := range writes {
		if m.at <= hit || q.ends[m.at] < rules.MinCacheTokens {
			continue
		}
		ttl, long := breakpointTTL(m.ttl, c.ttl, rules)
		s.cache.putLocked(entryKey(ns, q.prefix[m.at], 0), ttl, now)
		if long {
			u.writeLong += q.ends[m.at] - done
		} else {
			u.writeShort += q.ends[m.at] - done
		}
		done = q.ends[m.at]
	}
	return u
}

// writePlan returns the breakpoints a request writes, in prompt order: in
// implicit mode (the default) the implicit one at the end of the input and the
// latest MaxBreakpoints-1 explicit ones; in explicit mode the latest
// MaxBreakpoints explicit ones. An explicit breakpoint where the implicit one
// stands keeps its own ttl.
func (q *tokenSeq) writePlan(rules Rules, c openaiCacheParams) []seqMark {
	implicit := c.mode != "explicit"
	n := rules.MaxBreakpoints
	if implicit {
		n--
	}
	marks := q.marks
	if len(marks) > max(n, 0) {
		marks = marks[len(marks)-max(n, 0):]
	}
	out := slices.Clone(marks)
	if implicit && q.inputEnd >= 0 && !slices.ContainsFunc(out, func(m seqMark) bool {
		return m.at == q.inputEnd
	}) {
		out = append(out, seqMark{at: q.inputEnd})
	}
	slices.SortFunc(out, func(a, b seqMark) int { return a.at - b.at })
	return out
}

// breakpointTTL returns the lifetime of a breakpoint's entry and whether it is
// the long one: its own ttl, else the request's, else the short default.
func breakpointTTL(own, request string, rules Rules) (time.Duration, bool) {
	ttl := own
	if ttl == "" {
		ttl = request
	}
	if ttl == "12h" && rules.LongTTL > 0 {
		return rules.LongTTL, true
	}
	return rules.ShortTTL, false
}
