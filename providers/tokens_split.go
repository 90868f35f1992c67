package providers

import "unicode/utf8"

// parallelMin is the length from which a count splits its text, or one long piece,
// in two halves and counts the second on another goroutine. A MiB of the hardest
// text takes tens of milliseconds on one core; a turn should not wait that long
// while a second core is idle, and below this length the halves are not worth a
// goroutine.
const parallelMin = 256 << 10

// countBoth returns first() + second(), running second on a goroutine of its own
// that ends before countBoth returns.
func countBoth(first, second func() int) int {
	done := make(chan int, 1)
	go func() { done <- second() }()
	n := first()
	return n + <-done
}

// splitText returns a place near the middle of s, valid UTF-8, where one piece of
// the pre-tokenizer ends and the next begins, or 0 if it finds none soon after
// the middle (one long piece may span it). Counting the two sides apart then gives
// the count of s.
func (t *classTable) splitText(s string) int {
	for q := len(s) / 2; q < len(s)*3/4; q++ {
		if t.isSplit(s, q) {
			return q
		}
	}
	return 0
}

// isSplit reports whether byte q of s, 0 < q < len(s), starts a piece whatever
// comes before and after. Words take letters and marks only, and at most a
// contraction after them; numbers take at most three digits; punctuation runs take
// neither letters nor digits, and only line breaks and slashes after them; white
// space runs end where white space does. So a piece starts at
//
//   - a space after a rune that is not white space, since only a run of white space
//     goes on with a space, and a space may open a piece;
//   - a rune that is neither white space nor '/' after \r or \n;
//   - a rune that is not a digit after a digit;
//   - a digit after a rune that is neither a digit nor white space.
//
// The pieces before q are also the same whether the text ends at q or goes on: the
// last of them either does not end in white space or ends with a line break, which
// alternative 5 takes before alternative 6 could look past it.
func (t *classTable) isSplit(s string, q int) bool {
	r, _ := utf8.DecodeLastRuneInString(s[:q])
	before := t.of(r)
	after, _ := t.at(s, q)
	switch {
	case s[q] == ' ':
		return before&classSpace == 0
	case r == '\r' || r == '\n':
		return after&classSpace == 0 && s[q] != '/'
	case before&classNumber != 0:
		return after&classNumber == 0
	case after&classNumber != 0:
		return before&classSpace == 0
	}
	return false
}
