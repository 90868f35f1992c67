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
