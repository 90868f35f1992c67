package providers

import (
	"sync"

	"github.com/pkoukk/tiktoken-go"
	tiktokenloader "github.com/pkoukk/tiktoken-go-loader"
)

// Encoding is the tokenizer every local count uses. Counts serve budgets, layout
// and rollup decisions; billing always uses what the provider reports.
const Encoding = "o200k_base"

// maxPiece bounds how many bytes of text without white space go to the BPE merge
// at once. The merge is quadratic in the length of a piece, so a long run without
// spaces (base64, minified JSON) is cut into pieces of this size; the count then
// differs from the exact one by at most a token per cut.
const maxPiece = 2048

var encoder struct {
	once sync.Once
	enc  *tiktoken.Tiktoken
	err  error
}

// loadEncoder creates the process-wide encoder from the encodings embedded in the
// binary; nothing is downloaded.
func loadEncoder() (*tiktoken.Tiktoken, error) {
	encoder.once.Do(func() {
		tiktoken.SetBpeLoader(tiktokenloader.NewOfflineLoader())
		encoder.enc, encoder.err = tiktoken.GetEncoding(Encoding)
	})
	return encoder.enc, encoder.err
}

// CountTokens returns the number of o200k_base tokens in s. Special-token strings
// such as "<|endoftext|>" inside s count as ordinary text. It is safe for
// concurrent use; the encoder is created once per process, on first use.
func CountTokens(s string) int {
	if s == "" {
		return 0
	}
	enc, err := loadEncoder()
	if err != nil {
		// The encodings are embedded: this only fails if the binary is broken.
		// Fall back to the usual four bytes a token rather than refuse to count.
		return (len(s) + 3) / 4
	}
	n := 0
	for len(s) > 0 {
		cut := pieceEnd(s)
		n += len(enc.EncodeOrdinary(s[:cut]))
		s = s[cut:]
	}
	return n
}

// pieceEnd returns where the first piece of s ends: all of s if it is short,
// else the last white space before maxPiece, else maxPiece moved back to a UTF-8
// boundary.
func pieceEnd(s string) int {
	if len(s) <= maxPiece {
		return len(s)
	}
	for i := maxPiece; i > maxPiece/2; i-- {
		switch s[i] {
		case ' ', '\n', '\t', '\r':
			return i
		}
	}
	i := maxPiece
	for i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return i
}
