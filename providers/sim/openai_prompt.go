package sim

import (
	"unicode"
	"unicode/utf8"
)

// Token overheads of the OpenAI prompt layout, as in OpenAI's published way of
// counting chat tokens: a few tokens frame every message, a few prime the reply,
// and a few frame every tool definition.
const (
	chatMessageOverhead = 3
	chatReplyOverhead   = 3
	chatToolOverhead    = 3
)

// Chunk sizes of the canonical token sequence: text is cut into chunks of about
// chunkTarget bytes where a cut cannot change the tokenization, and forcibly (on
// a character boundary) after chunkMax bytes without such a place.
const (
	chunkTarget = 48
	chunkMax    = 256
)

// tokenSeq is the canonical token sequence of an OpenAI prompt, as chunks. Each
// chunk knows the digest of the whole sequence up to its end and how many tokens
// that is, so the digest of the prefix at any token offset is known to within a
// chunk.
type tokenSeq struct {
	counter *tokenCounter
	prefix  []digest // prefix[i]: the sequence up to the end of chunk i
	ends    []int    // ends[i]: tokens of chunks 0..i
	last    digest
	total   int
}

func newTokenSeq(model string, counter *tokenCounter) *tokenSeq {
	return &tokenSeq{counter: counter, last: hashFields("openai", model)}
}

// marker appends a chunk of fixed size that stands for framing (a role, a tool).
func (q *tokenSeq) marker(tokens int, fields ...string) {
	q.push(tokens, append([]string{"marker"}, fields...)...)
}

// text appends text, cut into chunks. The cuts fall where o200k_base's
// pre-tokenizer starts a new piece anyway (see safeCut), so the chunks' counts add
// up to the count of the text, except after a forced cut in a long run without
// such a place, where the sum may be off by a token.
func (q *tokenSeq) text(s string) {
	start := 0
	for _, c := range q.counter.chunk(s) {
		q.push(c.tokens, "text", s[start:c.end])
		start = c.end
	}
}

func (q *tokenSeq) push(tokens int, fields ...string) {
	q.last = chainDigest(q.last, fields...)
	q.total += tokens
	q.prefix = append(q.prefix, q.last)
	q.ends = append(q.ends, q.total)
}

// chunkEnd returns where the first chunk of s ends.
func chunkEnd(s string) int {
	if len(s) <= chunkTarget {
		return len(s)
	}
	for i := chunkTarget; i < len(s) && i < chunkMax; i++ {
		if safeCut(s, i) {
			return i
		}
	}
	if len(s) <= chunkMax {
		return len(s)
	}
	i := chunkMax
	for i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return i
}

// safeCut reports whether a chunk may start at s[i], because no o200k_base
// pre-token spans the place: before a space followed by a non-space; after a line
// break, before a non-space other than '/' (punctuation takes line breaks and
// slashes after it, as in ";\n//"); or between a letter and a punctuation mark
// other than an apostrophe (which may start a contraction), which is where text
// without spaces, such as Chinese, can be cut.
func safeCut(s string, i int) bool {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	switch {
	case s[i] == ' ':
		return i+1 < len(s) && !isSpace(s[i+1])
	case isSpace(s[i]) || !utf8.RuneStart(s[i]):
		return false
	case s[i-1] == '\n' || s[i-1] == '\r':
		return s[i] != '/'
	}
	prev, _ := utf8.DecodeLastRuneInString(s[:i])
	next, _ := utf8.DecodeRuneInString(s[i:])
	return unicode.IsLetter(prev) && next != '\'' && unicode.IsPunct(next)
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

// applyOpenAICache reads and writes the cache for one chat request and returns
// cached_tokens: the longest step of this prompt that an earlier request of the
// same namespace stored and that has not expired. Every step of the prompt is
// then stored (or refreshed) for rules.IdleTTL. Prompts shorter than
// MinCacheTokens are neither read nor stored.
func (s *Server) applyOpenAICache(ns digest, q *tokenSeq, rules Rules) int {
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
		s.cache.putLocked(k, rules.IdleTTL, now)
	}
	return cached
}
