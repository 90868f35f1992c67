package sim

import "unicode/utf8"

// Sizes of the pieces a streamed answer is cut into.
const (
	wordsPerDelta = 3  // text deltas carry a few words each
	runesPerDelta = 24 // ... or this many characters of a run without spaces
	bytesPerArgs  = 16 // tool arguments arrive in fragments of about this size
)

// textPieces cuts text into deltas of a few words each, keeping the space before
// a word with that word. Cuts fall on character boundaries only; text without
// spaces (Chinese, say) is cut every runesPerDelta characters.
func textPieces(text string) []string {
	var out []string
	start, words, runes := 0, 0, 0
	prevSpace := false
	for i, r := range text {
		space := r == ' ' || r == '\n' || r == '\t'
		if space && !prevSpace && i > start {
			words++
		}
		if (space && !prevSpace && words >= wordsPerDelta) || (words == 0 && runes >= runesPerDelta) {
			out = append(out, text[start:i])
			start, words, runes = i, 0, 0
		}
		prevSpace = space
		runes++
	}
	if start < len(text) {
		out = append(out, text[start:])
	}
	return out
}

// argPieces cuts the JSON text of tool arguments into fragments of about
// bytesPerArgs bytes, on character boundaries.
func argPieces(args string) []string {
	var out []string
	for len(args) > bytesPerArgs {
		cut := bytesPerArgs
		for cut < len(args) && !utf8.RuneStart(args[cut]) {
			cut++
		}
		out = append(out, args[:cut])
		args = args[cut:]
	}
	if args != "" {
		out = append(out, args)
	}
	return out
}
