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

// exactCount counts a single piece with the merge and no chunks.
func exactCount(t *testing.T, piece string) int {
	t.Helper()
	tk, err := loadTokenizer()
	if err != nil {
		t.Fatal(err)
	}
	if end := tk.classes.pieceEnd(piece, 0); end != len(piece) {
		t.Fatalf("the text is not one piece: the first ends at %d of %d", end, len(piece))
	}
	c := &counter{vocab: tk.vocab}
	if len(piece) <= smallPiece {
		return c.mergeSmall(piece)
	}
	return c.mergeLong(piece)
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

func TestBothMergesAgree(t *testing.T) {
	tk, err := loadTokenizer()
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{vocab: tk.vocab}
	for _, tt := range longPieces(smallPiece) {
		t.Run(tt.name, func(t *testing.T) {
			for end := 2; end <= len(tt.text); end++ {
				piece := tt.text[:end]
				if small, long := c.mergeSmall(piece), c.mergeLong(piece); small != long {
					t.Fatalf("%q: the small merge gives %d tokens, the long one %d",
						piece, small, long)
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
