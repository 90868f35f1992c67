package providers

import (
	"errors"
	"hash/maphash"
	"math/bits"
	"strings"
)

// vocabulary holds the o200k_base tokens and their ranks (which are also their token
// ids) in the two forms counting needs:
//
//   - byte strings to ranks, to find out whether a whole piece is one token;
//   - pairs of tokens to the rank of their concatenation, for the merge, which asks
//     two or three times for every byte of a long piece.
//
// Both are open-addressing tables probed linearly whose slots hold no pointers, and
// a Bloom filter in front of the pairs answers most "not a token" from the
// processor's cache. A Go map of strings costs three cache misses a look-up, and
// the merge is bound by memory latency.
type vocabulary struct {
	seed   maphash.Seed
	slots  []uint32 // byte strings: tag<<rankBits | rank, or 0 for an empty slot
	blob   string   // the bytes of every token, in rank order
	start  []uint32 // token r is blob[start[r]:start[r+1]]
	maxLen int      // the length of the longest token

	pairs  []uint64 // token pairs: (left<<rankBits | right + 1)<<rankBits | rank, or 0
	filter pairFilter
	bytes  [256]uint32
	bigram []uint32 // bigram[a<<8|b]: the rank of the bytes a, b as one token, or noRank
}

// errBadVocabulary means the embedded vocabulary does not look like o200k_base.
var errBadVocabulary = errors.New("providers: malformed token vocabulary")

// rankBits bounds the ranks a vocabulary may hold to 2^18, above o200k_base's 200,000,
// so that a pair of ranks and a third rank fit in one 64-bit slot.
const (
	rankBits = 18
	maxRanks = 1 << rankBits
	rankMask = maxRanks - 1
)

// newVocabulary builds the tables from a map of byte strings to ranks. Ranks must be
// distinct and below maxRanks, and every single byte must be a token.
func newVocabulary(ranks map[string]int) (*vocabulary, error) {
	byRank, err := ranksInOrder(ranks)
	if err != nil {
		return nil, err
	}
	v := &vocabulary{seed: maphash.MakeSeed()}
	v.addStrings(byRank)
	for b := range v.bytes {
		if v.bytes[b] = v.lookupString(string([]byte{byte(b)})); v.bytes[b] == noRank {
			return nil, errBadVocabulary
		}
	}
	v.addPairs(byRank)
	v.bigram = make([]uint32, 1<<16)
	for i := range v.bigram {
		v.bigram[i] = v.pairRank(v.bytes[i>>8], v.bytes[i&0xFF])
	}
	return v, nil
}

// ranksInOrder lists the tokens by rank; a rank no token has is an empty string.
func ranksInOrder(ranks map[string]int) ([]string, error) {
	top := -1
	for _, r := range ranks {
		if r < 0 || r >= rankMask { // rankMask itself marks "no rank" in a pairCache
			return nil, errBadVocabulary
		}
		top = max(top, r)
	}
	byRank := make([]string, top+1)
	for s, r := range ranks {
		if byRank[r] != "" || s == "" {
			return nil, errBadVocabulary
		}
		byRank[r] = s
	}
	return byRank, nil
}

// addStrings fills the table of byte strings.
func (v *vocabulary) addStrings(byRank []string) {
	var blob strings.Builder
	v.start = make([]uint32, 0, len(byRank)+1)
	for _, s := range byRank {
		v.start = append(v.start, uint32(blob.Len()))
		blob.WriteString(s)
		v.maxLen = max(v.maxLen, len(s))
	}
	v.start = append(v.start, uint32(blob.Len()))
	v.blob = blob.String()

	v.slots = make([]uint32, 1<<bits.Len(uint(2*len(byRank)-1))) // at most half full
	for r, s := range byRank {
		if s == "" {
			continue
		}
		i, tag := v.hash(s)
		for v.slots[i] != 0 {
			i = (i + 1) & uint64(len(v.slots)-1)
		}
		v.slots[i] = tag<<rankBits | uint32(r)
	}
}

// addPairs fills the table of pairs: every way to cut a token in two tokens.
func (v *vocabulary) addPairs(byRank []string) {
	type pair struct{ left, right, rank uint32 }
	var all []pair
	for r, s := range byRank {
		for cut := 1; cut < len(s); cut++ {
			left := v.lookupString(s[:cut])
			if left == noRank {
				continue
			}
			if right := v.lookupString(s[cut:]); right != noRank {
				all = append(all, pair{left, right, uint32(r)})
			}
		}
	}
	// Up to 7/8 full: the filter keeps most misses away, and hits stay in a line.
	v.pairs = make([]uint64, 1<<bits.Len(uint(len(all)*8/7)))
	v.filter = newPairFilter(len(all))
	mask := uint64(len(v.pairs) - 1)
	for _, p := range all {
		key := uint64(p.left)<<rankBits | uint64(p.right)
		v.filter.add(key)
		i := pairHash(key) & mask
		for v.pairs[i] != 0 {
			i = (i + 1) & mask
		}
		v.pairs[i] = (key+1)<<rankBits | uint64(p.rank)
	}
}

// hash returns the first slot to probe for b and the tag that marks it: 14 bits,
// never 0.
func (v *vocabulary) hash(b string) (uint64, uint32) {
	h := maphash.String(v.seed, b)
	return h & uint64(len(v.slots)-1), uint32(h>>(64-(32-rankBits))) | 1
}

// rank returns the rank of b, or noRank if b is not a token.
func (v *vocabulary) rank(b string) uint32 {
	switch {
	case len(b) > v.maxLen:
		return noRank
	case len(b) == 2:
		return v.byteRank(b[0], b[1])
	}
	return v.lookupString(b)
}

// lookupString returns the rank of b from the table of byte strings, or noRank.
func (v *vocabulary) lookupString(b string) uint32 {
	i, tag := v.hash(b)
	mask := uint64(len(v.slots) - 1)
	for {
		s := v.slots[i]
		if s == 0 {
			return noRank
		}
		if s>>rankBits == tag {
			r := s & rankMask
			if v.blob[v.start[r]:v.start[r+1]] == b {
				return r
			}
		}
		i = (i + 1) & mask
	}
}

// pairHash spreads a pair key over the table: Fibonacci hashing, whose high bits
// are the well-mixed ones.
func pairHash(key uint64) uint64 { return bits.RotateLeft64(key*0x9E3779B97F4A7C15, 32) }

// pairRank returns the rank of the concatenation of tokens left and right, or noRank
// if it is not a token.
func (v *vocabulary) pairRank(left, right uint32) uint32 {
	key := uint64(left)<<rankBits | uint64(right)
	if !v.filter.mayHave(key) {
		return noRank
	}
	return v.lookupPair(key)
}

// lookupPair returns the rank of the pair with key left<<rankBits | right from the
// pair table, or noRank.
func (v *vocabulary) lookupPair(key uint64) uint32 {
	want := key + 1
	mask := uint64(len(v.pairs) - 1)
	for i := pairHash(key) & mask; ; i = (i + 1) & mask {
		s := v.pairs[i]
		if s == 0 {
			return noRank
		}
		if s>>rankBits == want {
			return uint32(s & rankMask)
		}
	}
}

// byteRank returns the rank of the bytes a, b as one token, or noRank.
func (v *vocabulary) byteRank(a, b byte) uint32 { return v.bigram[int(a)<<8|int(b)] }

// byteToken returns the token of the single byte b.
func (v *vocabulary) byteToken(b byte) uint32 { return v.bytes[b] }

// pairFilter is a Bloom filter of pair keys blocked to one machine word a key:
// four bits of one word, about nine bits a key in all. It answers most questions
// about pairs that are not in the vocabulary from half a megabyte that stays in the
// processor's cache, where the pair table takes a trip to memory, and with one
// load and no branch but the answer. About one answer in thirty is a false
// "maybe", which the table then corrects.
type pairFilter []uint64

// newPairFilter returns an empty filter sized for n keys.
func newPairFilter(n int) pairFilter {
	return make(pairFilter, 1<<bits.Len(uint(n*9/64)))
}

// probe returns the word of key and the bits to test in it.
func (f pairFilter) probe(key uint64) (*uint64, uint64) {
	h := key * 0x9E3779B97F4A7C15
	word := &f[(h>>32)&uint64(len(f)-1)]
	g := (key ^ key>>29) * 0xBF58476D1CE4E5B9
	return word, 1<<(g&63) | 1<<(g>>8&63) | 1<<(g>>16&63) | 1<<(g>>24&63)
}

func (f pairFilter) add(key uint64) {
	word, bits := f.probe(key)
	*word |= bits
}

// mayHave reports false if key was never added.
func (f pairFilter) mayHave(key uint64) bool {
	word, bits := f.probe(key)
	return *word&bits == bits
}
