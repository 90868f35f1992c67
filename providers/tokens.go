package providers

import (
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	tiktokenloader "github.com/pkoukk/tiktoken-go-loader"
)

// Encoding is the tokenizer every local count uses. Counts serve budgets, layout
// and rollup decisions; billing always uses what the provider reports.
const Encoding = "o200k_base"

// encodingFile names the o200k_base vocabulary among the encodings embedded in the
// binary by the offline loader, which looks files up by their base name only.
const encodingFile = "o200k_base.tiktoken"

// maxExactPiece bounds the pieces counted exactly. A longer piece, which takes 16 KiB
// of letters without a space, digit or punctuation, or a run of white space or
// punctuation that long, is cut into chunks of at most maxExactPiece bytes at rune
// boundaries that are counted apart; this bounds the merge's time and memory per
// chunk. A cut may move the count by a few tokens: over runs of one character,
// random letters of several scripts, CJK and emoji, cuts moved it by -2 to +3
// tokens, by less than one on average, and the tests hold it within 3 a cut.
const maxExactPiece = 16 << 10

// tokenizer counts o200k_base tokens. It does not change after loading, and each
// count takes a counter of its own from the pool, so it is safe for concurrent use.
type tokenizer struct {
	vocab    *vocabulary
	classes  *classTable
	counters sync.Pool // of *counter
}

var encoder struct {
	once sync.Once
	tk   *tokenizer
	err  error
}

// loadTokenizer creates the process-wide tokenizer from the vocabulary embedded in
// the binary; nothing is downloaded.
func loadTokenizer() (*tokenizer, error) {
	encoder.once.Do(func() {
		ranks, err := tiktokenloader.NewOfflineLoader().LoadTiktokenBpe(encodingFile)
		if err != nil {
			encoder.err = fmt.Errorf("providers: loading %s: %w", Encoding, err)
			return
		}
		vocab, err := newVocabulary(ranks)
		if err != nil {
			encoder.err = fmt.Errorf("providers: loading %s: %w", Encoding, err)
			return
		}
		encoder.tk = &tokenizer{vocab: vocab, classes: newClassTable()}
	})
	return encoder.tk, encoder.err
}

// CountTokens returns the number of o200k_base tokens in s, the length of what
// tiktoken-go's EncodeOrdinary returns for s: exactly, as long as no piece of the
// pre-tokenizer (a word with the space before it, up to three digits, a run of
// punctuation or of white space) is longer than 16 KiB. A longer piece is counted
// in chunks of 16 KiB, and each boundary between chunks may move the count: by at
// most 3 tokens in the tests, less than one on average. Special-token strings such
// as "<|endoftext|>" count as ordinary text, and each byte of invalid UTF-8 counts
// as U+FFFD, as in tiktoken-go.
//
// The time it takes grows linearly with len(s), up to a logarithmic factor: on one
// core, a MiB of English takes about 9 ms, and the hardest MiB found, random
// letters without spaces, about 47 ms. A text of 256 KiB or more is counted in two
// halves at once, the second on a goroutine that ends before CountTokens returns,
// which halves those times when a second core is free.
//
// It is safe for concurrent use. The tokenizer is built once per process, on first
// use, from the vocabulary embedded in the binary (about 0.2 s and 9 MiB); nothing
// is downloaded.
func CountTokens(s string) int {
	if s == "" {
		return 0
	}
	tk, err := loadTokenizer()
	if err != nil {
		// The vocabulary is embedded: this only fails if the binary is broken.
		// Fall back to the usual four bytes a token rather than refuse to count.
		return (len(s) + 3) / 4
	}
	return tk.count(s)
}

// count returns the number of tokens in s.
func (tk *tokenizer) count(s string) int {
	if !utf8.ValidString(s) {
		s = repairUTF8(s)
	}
	if len(s) >= parallelMin {
		if half := tk.classes.splitText(s); half > 0 {
			return countBoth(
				func() int { return tk.countPieces(s[:half]) },
				func() int { return tk.countPieces(s[half:]) })
		}
	}
	return tk.countPieces(s)
}

// repairUTF8 replaces each byte of s that is not part of valid UTF-8 with U+FFFD, as
// tiktoken's conversion of the text to runes does.
func repairUTF8(s string) string {
	var b strings.Builder
	b.Grow(len(s) + len(s)/2)
	for _, r := range s { // an invalid byte comes out as one utf8.RuneError
		b.WriteRune(r)
	}
	return b.String()
}

// countPieces returns the number of tokens in s, which must be valid UTF-8, on
// the calling goroutine except for the second half of a long piece.
func (tk *tokenizer) countPieces(s string) int {
	return tk.withCounter(func(c *counter) int {
		n := 0
		for p := 0; p < len(s); {
			e := tk.classes.pieceEnd(s, p)
			n += c.pieceTokens(s[p:e])
			p = e
		}
		return n
	})
}

// withCounter runs f with a counter from the pool.
func (tk *tokenizer) withCounter(f func(*counter) int) int {
	c, _ := tk.counters.Get().(*counter)
	if c == nil {
		c = &counter{tk: tk, vocab: tk.vocab}
	}
	defer tk.counters.Put(c)
	return f(c)
}

// counter is the working memory of a count, kept in a pool between counts: caches
// of what short pieces and pairs of tokens gave before, and the merge's arrays.
type counter struct {
	tk     *tokenizer
	vocab  *vocabulary
	pieces pieceCache
	pairs  pairCache
	merge  mergeScratch
}

// pieceTokens returns the number of tokens in one piece of the pre-tokenizer.
func (c *counter) pieceTokens(piece string) int {
	if len(piece) == 1 {
		return 1 // every byte is a token
	}
	if len(piece) > maxCachedPiece {
		return c.countPiece(piece)
	}
	slot, ok := c.pieces.find(piece)
	if !ok {
		slot.set(piece, c.countPiece(piece))
	}
	return slot.count()
}

// countPiece returns the number of tokens in a piece of two bytes or more.
func (c *counter) countPiece(piece string) int {
	switch {
	case c.vocab.rank(piece) != noRank:
		return 1
	case len(piece) <= smallPiece:
		return c.mergeSmall(piece)
	case len(piece) < parallelMin:
		return c.countChunks(piece)
	}
	half := 0
	for half < len(piece)/2 {
		half += chunkEnd(piece[half:])
	}
	return countBoth(
		func() int { return c.countChunks(piece[:half]) },
		func() int {
			return c.tk.withCounter(func(o *counter) int { return o.countChunks(piece[half:]) })
		})
}

// countChunks returns the number of tokens in a piece, or in the chunks of a piece
// from a chunk boundary on: the sum of the counts of its chunks, each merged by the
// faster merge for it.
func (c *counter) countChunks(piece string) int {
	n := 0
	for len(piece) > 0 {
		cut := chunkEnd(piece)
		if chunk := piece[:cut]; wavesFaster(chunk) {
			n += c.mergeWaves(chunk)
		} else {
			n += c.mergeTree(chunk)
		}
		piece = piece[cut:]
	}
	return n
}

// chunkEnd returns where the first chunk of piece ends: all of it up to
// maxExactPiece bytes, else maxExactPiece moved back to the start of a rune.
func chunkEnd(piece string) int {
	if len(piece) <= maxExactPiece {
		return len(piece)
	}
	i := maxExactPiece
	for i > 0 && !utf8.RuneStart(piece[i]) {
		i--
	}
	return i
}
