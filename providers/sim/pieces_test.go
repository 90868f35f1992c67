package sim

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stated-dev/stated/providers"
)

func TestStreamPiecesReassembleOnCharacterBoundaries(t *testing.T) {
	tests := []struct {
		name string
		text string
	}{
		{"english prose", "The session server keeps each conversation and sends only " +
			"what is new, so the provider reads the cache instead of writing it again."},
		{"chinese without spaces", strings.Repeat("会话服务器保存每个对话。", 8)},
		{"emoji and accents", strings.Repeat("café 🎉 naïve 🚀 ", 9)},
		{"json arguments", `{"ingredients": ["chicken", "bell peppers", "rice"], "q": "é"}`},
		{"one word", "Hello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for kind, pieces := range map[string][]string{
				"text": textPieces(tt.text), "arguments": argPieces(tt.text)} {
				if got := strings.Join(pieces, ""); got != tt.text {
					t.Fatalf("%s pieces join to %q", kind, got)
				}
				for _, p := range pieces {
					if p == "" || !utf8.ValidString(p) {
						t.Errorf("%s piece %q is empty or splits a character", kind, p)
					}
				}
			}
		})
	}
	if n := len(textPieces(tests[0].text)); n < 5 {
		t.Errorf("prose of 27 words came in %d pieces, want a few words each", n)
	}
}

func TestChunkCountsAddUpToTheTextCount(t *testing.T) {
	tests := []struct {
		name string
		text string
	}{
		{"prose", strings.Repeat("The provider reads the cache instead of writing it. ", 12)},
		{"code with comments after punctuation",
			strings.Repeat("x"+strings.Repeat("=1", 25)+";\n//c\n", 8)},
		{"contractions", strings.Repeat("It's what they'd call a cache, isn't it? ", 10)},
		{"chinese with punctuation", strings.Repeat(
			"监督学习涉及向计算机提供带标签的数据，其中正确答案已经知道。", 6)},
		{"line breaks and indentation", strings.Repeat("func f() {\n\treturn 1\n}\n\n", 12)},
		{"markdown", strings.Repeat("**Environment**\r\n\r\n- Apple M2 (AArch64)\r\n", 10)},
	}
	counter := newTokenCounter()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.text) > 2048 {
				t.Fatalf("text of %d bytes: CountTokens itself cuts past 2048", len(tt.text))
			}
			chunks := counter.chunk(tt.text)
			sum := 0
			for _, c := range chunks {
				sum += c.tokens
			}
			if want := providers.CountTokens(tt.text); sum != want || len(chunks) < 3 {
				t.Errorf("%d chunks count %d tokens, the text %d", len(chunks), sum, want)
			}
			start := 0
			for _, c := range chunks {
				if c.end-start >= chunkMax {
					t.Errorf("chunk %q was cut by force", tt.text[start:c.end])
				}
				start = c.end
			}
		})
	}
}
