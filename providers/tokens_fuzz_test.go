package providers

import "testing"

// FuzzCountTokens checks the scanner's pieces against tiktoken's pattern, the count
// against tiktoken's EncodeOrdinary and the places a long text may be split at, on
// texts of up to 4 KiB: all of them are below the bound past which counts may
// differ.
func FuzzCountTokens(f *testing.F) {
	for _, tt := range countCases {
		if len(tt.text) <= 4<<10 {
			f.Add(tt.text)
		}
	}
	for seed := range uint64(20) {
		f.Add(genMixed(seed, 40))
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 4<<10 {
			t.Skip("longer than the fuzzed size")
		}
		checkAgainstReference(t, s)
		checkSplits(t, s)
	})
}
