package sim

import (
	"crypto/sha256"
	"sync"

	"github.com/stated-dev/stated/providers"
)

// Bounds of the token count memo.
const (
	memoMinBytes   = 256  // shorter texts are counted directly: cheaper than hashing
	memoMaxEntries = 8192 // a full memo is emptied and starts over
)

// tokenCounter counts tokens with providers.CountTokens and remembers the counts
// of long texts. Every request of a conversation repeats its system prompt, tools
// and old turns; counting them once keeps the simulator's own latency small next
// to what it simulates. It is safe for concurrent use.
type tokenCounter struct {
	mu     sync.Mutex // guards counts and chunks
	counts map[digest]int
	chunks map[digest][]textChunk
}

// textChunk is one chunk of a text in the OpenAI token sequence: where it ends
// (a byte offset in the text) and how many tokens it counts.
type textChunk struct {
	end    int
	tokens int
}

func newTokenCounter() *tokenCounter {
	return &tokenCounter{counts: make(map[digest]int), chunks: make(map[digest][]textChunk)}
}

// count returns the tokens of s.
func (c *tokenCounter) count(s string) int {
	if len(s) < memoMinBytes {
		return providers.CountTokens(s)
	}
	key := digest(sha256.Sum256([]byte(s)))
	c.mu.Lock()
	n, ok := c.counts[key]
	c.mu.Unlock()
	if ok {
		return n
	}
	n = providers.CountTokens(s)
	c.mu.Lock()
	if len(c.counts) >= memoMaxEntries {
		clear(c.counts)
	}
	c.counts[key] = n
	c.mu.Unlock()
	return n
}

// chunk cuts s into the chunks of the OpenAI token sequence (see chunkEnd) and
// counts each.
func (c *tokenCounter) chunk(s string) []textChunk {
	if len(s) < memoMinBytes {
		return cutChunks(s)
	}
	key := digest(sha256.Sum256([]byte(s)))
	c.mu.Lock()
	chunks, ok := c.chunks[key]
	c.mu.Unlock()
	if ok {
		return chunks
	}
	chunks = cutChunks(s)
	c.mu.Lock()
	if len(c.chunks) >= memoMaxEntries {
		clear(c.chunks)
	}
	c.chunks[key] = chunks
	c.mu.Unlock()
	return chunks
}

func cutChunks(s string) []textChunk {
	var out []textChunk
	for start := 0; start < len(s); {
		end := start + chunkEnd(s[start:])
		out = append(out, textChunk{end: end, tokens: providers.CountTokens(s[start:end])})
		start = end
	}
	return out
}
