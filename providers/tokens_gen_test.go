package providers

import (
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"unicode/utf8"
)

// englishWords is the vocabulary of generated English text.
var englishWords = strings.Fields(`the a session server holds conversation and lays out
each provider request so that prompt cache hits while answer streams back to client who
pays for what it costs budget tokens rollup summary turn event tool result model policy
don't it's we'll they're I've you'd she'll can't won't isn't HTTP JSON WebSocket Badger
NATS cluster node lease owner epoch ledger reservation price table cheaper faster`)

// genEnglish returns about n bytes of English-like prose: sentences of words from a
// fixed vocabulary with numbers, punctuation and paragraph breaks, the same for a seed.
func genEnglish(seed uint64, n int) string {
	r := rand.New(rand.NewPCG(seed, 1))
	var b strings.Builder
	b.Grow(n + 64)
	for b.Len() < n {
		words := 4 + r.IntN(14)
		for i := range words {
			w := englishWords[r.IntN(len(englishWords))]
			if i == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			} else {
				b.WriteByte(' ')
			}
			b.WriteString(w)
			switch r.IntN(20) {
			case 0:
				b.WriteString(",")
			case 1:
				b.WriteString(" 2048")
			case 2:
				b.WriteString(" (3.14)")
			}
		}
		b.WriteString([]string{". ", "? ", "! ", ".\n\n", ":\n- "}[r.IntN(5)])
	}
	return cutValid(b.String(), n)
}

// genBase64 returns n bytes of base64 of random bytes: one run without spaces.
func genBase64(seed uint64, n int) string {
	r := rand.New(rand.NewPCG(seed, 2))
	raw := make([]byte, n*3/4+3)
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	return base64.StdEncoding.EncodeToString(raw)[:n]
}

// genCJK returns about n bytes of random CJK ideographs without punctuation or
// spaces: one run of letters.
func genCJK(seed uint64, n int) string {
	r := rand.New(rand.NewPCG(seed, 3))
	var b strings.Builder
	b.Grow(n + 4)
	for b.Len() < n {
		b.WriteRune(rune(0x4E00 + r.IntN(0x9FA5-0x4E00)))
	}
	return cutValid(b.String(), n)
}

// cutValid cuts s to at most n bytes without splitting a UTF-8 sequence.
func cutValid(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// newRand returns a generator that gives the same numbers for a seed.
func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 11)) }

// genAlphabet returns n bytes drawn from alphabet, which must be ASCII.
func genAlphabet(seed uint64, n int, alphabet string) string {
	r := newRand(seed)
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

// genRunes returns about n bytes of runes drawn from lo to hi.
func genRunes(seed uint64, n int, lo, hi rune) string {
	r := newRand(seed)
	var b strings.Builder
	b.Grow(n + 4)
	for b.Len() < n {
		b.WriteRune(lo + rune(r.IntN(int(hi-lo+1))))
	}
	return cutValid(b.String(), n)
}

// genWords returns n bytes of random lower-case words of size-1 letters, each
// followed by a space.
func genWords(seed uint64, n, size int) string {
	b := []byte(genAlphabet(seed, n, "abcdefghijklmnopqrstuvwxyz"))
	for i := size - 1; i < len(b); i += size {
		b[i] = ' '
	}
	return string(b)
}
