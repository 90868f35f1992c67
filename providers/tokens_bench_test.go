package providers

import (
	"strings"
	"testing"
	"time"
)

const (
	kib = 1 << 10
	mib = 1 << 20
)

// benchCount measures CountTokens on one input, after the tokenizer is loaded.
func benchCount(b *testing.B, s string) {
	b.Helper()
	CountTokens("load the tokenizer")
	b.ReportAllocs()
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		CountTokens(s)
	}
}

func BenchmarkCountTokensEnglish1KiB(b *testing.B)  { benchCount(b, genEnglish(1, kib)) }
func BenchmarkCountTokensEnglish64KiB(b *testing.B) { benchCount(b, genEnglish(1, 64*kib)) }
func BenchmarkCountTokensEnglish1MiB(b *testing.B)  { benchCount(b, genEnglish(1, mib)) }
func BenchmarkCountTokensRunOfA1MiB(b *testing.B)   { benchCount(b, strings.Repeat("a", mib)) }
func BenchmarkCountTokensBase64_1MiB(b *testing.B)  { benchCount(b, genBase64(1, mib)) }
func BenchmarkCountTokensCJK1MiB(b *testing.B)      { benchCount(b, genCJK(1, mib)) }

// hardInputs are a MiB of each kind of text that is slow to count: long pieces,
// where the merge does most of the work, and many medium ones.
func hardInputs() []struct{ name, text string } {
	return []struct{ name, text string }{
		{"minified JSON", cutValid(strings.Repeat(`{"id":17,"tags":["a","bb"],"ok":true},`,
			mib/37), mib)},
		{"random valid UTF-8", genRunes(1, mib, 0, 0x10FFFF)},
		{"emoji", genRunes(2, mib, 0x1F300, 0x1F5FF)},
		{"a run of equals signs", strings.Repeat("=", mib)},
		{"a run of spaces", strings.Repeat(" ", mib)},
		{"random lower-case letters", genAlphabet(3, mib, "abcdefghijklmnopqrstuvwxyz")},
		{"random words of 31 letters", genWords(4, mib, 32)},
		{"random words of 47 letters", genWords(5, mib, 48)},
		{"random words of 200 letters", genWords(6, mib, 200)},
		{"runs of 2000 equals signs", strings.Repeat(strings.Repeat("=", 1999)+"\n", mib/2000)},
		{"runs of 300 spaces", strings.Repeat("x"+strings.Repeat(" ", 299), mib/300)},
	}
}

func BenchmarkCountTokensHard1MiB(b *testing.B) {
	for _, in := range hardInputs() {
		b.Run(strings.ReplaceAll(in.name, " ", "_"), func(b *testing.B) { benchCount(b, in.text) })
	}
}

// perByte returns the least time a count of s took per byte over three rounds of
// counts of at least 256 KiB in all.
func perByte(s string) time.Duration {
	reps := 1 + (256<<10)/len(s)
	best := time.Duration(1<<63 - 1)
	for range 3 {
		start := time.Now()
		for range reps {
			CountTokens(s)
		}
		best = min(best, time.Since(start)/time.Duration(reps))
	}
	return best / time.Duration(len(s))
}

// Counting was quadratic in the length of a piece once: a MiB of one letter took a
// second. The time a byte takes must not grow with the length of a piece (2 KiB to
// 16 KiB, all counted exactly) or of a text (128 KiB to 1 MiB); the bound leaves a
// busy machine four times the room, and quadratic growth would pass it twice over.
func TestCountTokensTimeGrowsLinearly(t *testing.T) {
	if testing.Short() {
		t.Skip("times a few MiB of counting")
	}
	CountTokens("load the tokenizer")
	inputs := append(hardInputs(), struct{ name, text string }{"CJK", genCJK(7, mib)})
	for _, in := range inputs {
		for _, size := range [][2]int{{2 * kib, 16 * kib}, {128 * kib, mib}} {
			small, large := cutValid(in.text, size[0]), cutValid(in.text, size[1])
			ts, tl := perByte(small), perByte(large)
			if tl > 4*ts+time.Nanosecond {
				t.Errorf("%s: a byte of %d took %v, of %d %v: more than linear", in.name,
					len(small), ts, len(large), tl)
			}
		}
	}
}
