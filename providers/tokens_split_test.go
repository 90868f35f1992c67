package providers

import (
	"slices"
	"strings"
	"testing"
)

// checkSplits fails unless every place isSplit accepts in s starts a piece, with the
// same pieces before it whether the text ends there or not.
func checkSplits(t testing.TB, s string) {
	t.Helper()
	tk, err := loadTokenizer()
	if err != nil {
		t.Fatal(err)
	}
	s = string([]rune(s))
	pieces := scannedPieces(t, s)
	starts := map[int]int{} // byte offset to the number of pieces before it
	at := 0
	for i, p := range pieces {
		starts[at] = i
		at += len(p)
	}
	for q := 1; q < len(s); q++ {
		if !tk.classes.isSplit(s, q) {
			continue
		}
		before, ok := starts[q]
		if !ok {
			t.Fatalf("%.200q: byte %d is taken for a split but no piece starts there", s, q)
		}
		if got := scannedPieces(t, s[:q]); !slices.Equal(got, pieces[:before]) {
			t.Fatalf("%.200q: the text cut at byte %d has pieces %q, not %q", s, q, got,
				pieces[:before])
		}
	}
}

func TestSplitPlacesStartPieces(t *testing.T) {
	for _, tt := range countCases {
		if len(tt.text) <= 4<<10 {
			checkSplits(t, tt.text)
		}
	}
	for seed := range uint64(300) {
		checkSplits(t, genMixed(seed, 1+int(seed%60)))
	}
	checkSplits(t, genEnglish(1, 4<<10))
}

func TestLongTextsCountTheSameInTwoHalves(t *testing.T) {
	tk, err := loadTokenizer()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		text string
	}{
		{"English prose", genEnglish(2, 2*parallelMin)},
		{"lines of code", strings.Repeat("\tif err != nil {\n\t\treturn err\n\t}\n", parallelMin/30)},
		{"one long piece of letters", genAlphabet(3, 2*parallelMin, "abcdefghij")},
		{"one long piece of CJK", genCJK(4, 2*parallelMin)},
		{"words around a long piece", "start " + genAlphabet(5, 2*parallelMin, "xyz") + " end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serial := 0
			for p := 0; p < len(tt.text); {
				e := tk.classes.pieceEnd(tt.text, p)
				piece := tt.text[p:e]
				serial += tk.withCounter(func(c *counter) int {
					if len(piece) == 1 || c.vocab.rank(piece) != noRank {
						return 1
					}
					if len(piece) <= smallPiece {
						return c.mergeSmall(piece)
					}
					return c.countChunks(piece)
				})
				p = e
			}
			if got := CountTokens(tt.text); got != serial {
				t.Errorf("counted %d tokens in two halves, %d in one go", got, serial)
			}
		})
	}
}
