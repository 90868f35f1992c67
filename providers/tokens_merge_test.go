package providers

import (
	"slices"
	"strings"
	"testing"
)

// longPieces are single pieces of the pre-tokenizer that make the merge work hard:
// runs of one character, where every pair has the same rank, and random runs of
// letters, where the ranks are all different.
func longPieces(n int) []struct{ name, text string } {
	return []struct{ name, text string }{
		{"a run of one letter", strings.Repeat("a", n)},
		{"a run of equals signs", strings.Repeat("=", n)},
		{"a run of spaces at the end of the text", strings.Repeat(" ", n)},
		{"a run of new lines", strings.Repeat("\n", n)},
		{"a repeated syllable", cutValid(strings.Repeat("abc", n/3+1), n)},
		{"random lower-case letters", genAlphabet(1, n, "abcdefghijklmnopqrstuvwxyz")},
		{"random common letters", genAlphabet(2, n, "etaoinshrdlu")},
		{"random a and b", genAlphabet(3, n, "ab")},
		{"random punctuation", genAlphabet(4, n, "!#$%&()*+,-.:;<=>?@[]^_{|}~")},
		{"random CJK ideographs", genCJK(5, n)},
		{"random hiragana", genRunes(6, n, 0x3041, 0x3096)},
		{"random Cyrillic letters", genRunes(7, n, 0x430, 0x44F)},
		{"random emoji", genRunes(8, n, 0x1F300, 0x1F5FF)},
	}
}

// merges are the three merges, which must give the same count for every piece.
var merges = []struct {
	name  string
	merge func(c *counter, piece string) int
}{
	{"the small merge", (*counter).mergeSmall},
	{"the wave merge", (*counter).mergeWaves},
	{"the tree merge", (*counter).mergeTree},
}

// exactCount counts a single piece with each long merge and no chunks, and fails
// unless they agree.
func exactCount(t *testing.T, piece string) int {
	t.Helper()
	tk, err := loadTokenizer()
	if err != nil {
		t.Fatal(err)
	}
	if end := tk.classes.pieceEnd(piece, 0); end != len(piece) {
		t.Fatalf("the text is not one piece: the first ends at %d of %d", end, len(piece))
	}
	c := &counter{tk: tk, vocab: tk.vocab}
	waves, tree := c.mergeWaves(piece), c.mergeTree(piece)
	if waves != tree {
		t.Fatalf("the wave merge gives %d tokens, the tree merge %d", waves, tree)
	}
	return waves
}

func TestLongPiecesEqualTiktoken(t *testing.T) {
	if testing.Short() {
		t.Skip("tiktoken's own merge is quadratic in the piece")
	}
	for _, tt := range longPieces(6 << 10) {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := exactCount(t, tt.text), referenceCount(t, tt.text); got != want {
				t.Errorf("merged into %d tokens, tiktoken %d", got, want)
			}
			checkAgainstReference(t, tt.text)
		})
	}
}

func TestAllMergesAgreeOnShortPieces(t *testing.T) {
	tk, err := loadTokenizer()
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{tk: tk, vocab: tk.vocab}
	for _, tt := range longPieces(smallPiece) {
		t.Run(tt.name, func(t *testing.T) {
			for end := 2; end <= len(tt.text); end++ {
				piece := tt.text[:end]
				want := c.mergeSmall(piece)
				for _, m := range merges[1:] {
					if got := m.merge(c, piece); got != want {
						t.Fatalf("%q: %s gives %d tokens, the small merge %d", piece,
							m.name, got, want)
					}
				}
			}
		})
	}
}

// maxCutError bounds how far a chunk boundary moves the count of a piece past
// maxExactPiece, in tokens. Each boundary cuts a token or two of the exact
// encoding, and the merges next to it may settle differently on either side.
const maxCutError = 3

func TestPiecesPastTheBoundStayCloseToTheExactCount(t *testing.T) {
	worst := 0.0
	for _, tt := range longPieces(1 << 20) {
		t.Run(tt.name, func(t *testing.T) {
			exact, got := exactCount(t, tt.text), CountTokens(tt.text)
			cuts := (len(tt.text) - 1) / maxExactPiece
			if got-exact > maxCutError*cuts || exact-got > maxCutError*cuts {
				t.Errorf("counted %d tokens, exactly %d: off by more than %d a cut over %d cuts",
					got, exact, maxCutError, cuts)
			}
			worst = max(worst, float64(got-exact)/float64(cuts), float64(exact-got)/float64(cuts))
		})
	}
	t.Logf("worst error: %.2f tokens a cut", worst)
}

func TestPairQueueHandsOutTheLeastPairFirst(t *testing.T) {
	r := newRand(1)
	for round := range 200 {
		var q pairQueue
		n := 1 + r.IntN(1500)
		span := []int{40, 3000, rankMask}[round%3] // ranks in one or both radix digits
		q.reset(n)
		var want []uint64 // the keys queued and not yet handed out
		for offset := range int32(n) {
			if r.IntN(3) > 0 {
				rank := uint32(r.IntN(span))
				q.push(rank, offset)
				want = append(want, pairKey(rank, offset))
			}
		}
		for pops := 0; ; pops++ {
			// Push a few pairs between pops, some at or below the ranks handed
			// out, and stop pushing after a while so that the queue drains.
			for range r.IntN(3) * min(1, max(0, n-pops)) {
				rank, offset := uint32(r.IntN(span)), int32(r.IntN(n))
				q.push(rank, offset)
				want = append(want, pairKey(rank, offset))
			}
			rank, offset, ok := q.pop()
			if !ok {
				break
			}
			least := slices.Min(want)
			if got := pairKey(rank, offset); got != least {
				t.Fatalf("round %d: popped rank %d at %d, want rank %d at %d",
					round, rank, offset, least>>32, uint32(least))
			}
			want = slices.Delete(want, slices.Index(want, least), slices.Index(want, least)+1)
		}
		if len(want) > 0 {
			t.Fatalf("round %d: the queue ran dry with %d pairs left", round, len(want))
		}
	}
}

// plainBPE counts the tokens of piece with tiktoken's own merge: scan all pairs for
// the lowest rank, leftmost on a tie, and merge it, until no pair is a token.
func plainBPE(ranks map[string]int, piece string) int {
	parts := make([]string, len(piece))
	for i := range piece {
		parts[i] = piece[i : i+1]
	}
	for {
		best, bestRank := -1, 0
		for i := 0; i+1 < len(parts); i++ {
			if r, ok := ranks[parts[i]+parts[i+1]]; ok && (best < 0 || r < bestRank) {
				best, bestRank = i, r
			}
		}
		if best < 0 {
			return len(parts)
		}
		parts[best] += parts[best+1]
		parts = slices.Delete(parts, best+1, best+2)
	}
}

// madeUpRanks returns a vocabulary of every byte and of random strings of a few
// letters with random ranks, so that a token often ranks below the tokens it is
// made of: o200k_base seldom lets that show, and the merges must still handle it.
func madeUpRanks(seed uint64) map[string]int {
	r := newRand(seed)
	ranks := map[string]int{}
	for b := range 256 {
		ranks[string([]byte{byte(b)})] = b
	}
	order := r.Perm(300)
	for len(ranks) < 256+len(order) {
		token := genAlphabet(r.Uint64(), 2+r.IntN(4), "abcd")
		if _, ok := ranks[token]; !ok {
			ranks[token] = 256 + order[len(ranks)-256]
		}
	}
	return ranks
}

func TestMergesEqualPlainBPEOnAMadeUpVocabulary(t *testing.T) {
	for seed := range uint64(20) {
		ranks := madeUpRanks(seed)
		vocab, err := newVocabulary(ranks)
		if err != nil {
			t.Fatal(err)
		}
		c := &counter{vocab: vocab}
		r := newRand(seed)
		for range 200 {
			piece := genAlphabet(r.Uint64(), 2+r.IntN(300), "abcd")
			want := plainBPE(ranks, piece)
			for _, m := range merges {
				if m.name == "the small merge" && len(piece) > smallPiece {
					continue
				}
				if got := m.merge(c, piece); got != want {
					t.Fatalf("vocabulary %d, %q: %s gives %d tokens, plain BPE %d",
						seed, piece, m.name, got, want)
				}
			}
		}
	}
}
