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

	// bounds are the chunks that end a content part, a tool call or a message,
	// in order: where a breakpoint may stand and a read may hit.
	bounds []int
	// marks are the explicit breakpoints, in order.
	marks []seqMark
	// inputEnd is the chunk that ends the last input message, where the
	// implicit breakpoint stands; -1 when there is none.
	inputEnd int
}

// seqMark is a breakpoint: the chunk it ends and its ttl ("" for the request's).
type seqMark struct {
	at  int
	ttl string
}

func newTokenSeq(model string, counter *tokenCounter) *tokenSeq {
	return &tokenSeq{counter: counter, last: hashFields("openai", model), inputEnd: -1}
}

// boundary records that a content part, tool call or message ends here.
func (q *tokenSeq) boundary() {
	at := len(q.prefix) - 1
	if at < 0 || (len(q.bounds) > 0 && q.bounds[len(q.bounds)-1] == at) {
		return
	}
	q.bounds = append(q.bounds, at)
}

// breakpoint records an explicit breakpoint here, with its ttl.
func (q *tokenSeq) breakpoint(ttl string) {
	q.boundary()
	if len(q.prefix) == 0 {
		return
	}
	q.marks = append(q.marks, seqMark{at: len(q.prefix) - 1, ttl: ttl})
}

// endInput records that the input ends here, before the reply's priming.
func (q *tokenSeq) endInput() {
	q.boundary()
	q.inputEnd = len(q.prefix) - 1
}

// markedPrefixes returns the prefix digests of the explicit breakpoints.
func (q *tokenSeq) markedPrefixes() []digest {
	out := make([]digest, len(q.marks))
	for i, m := range q.marks {
		out[i] = q.prefix[m.at]
	}
	return out
}

// parts appends content parts, each followed by its breakpoint or a boundary.
func (q *tokenSeq) parts(parts []chatPart) {
	for _, p := range parts {
		q.text(p.Text)
		if p.Breakpoint != nil {
			q.breakpoint(p.Breakpoint.TTL)
		} else {
			q.boundary()
		}
	}
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
