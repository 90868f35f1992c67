package providers

import (
	"unicode"
	"unicode/utf8"
)

// The o200k_base pre-tokenizer cuts text into pieces with a pattern of seven
// alternatives, tried as a backtracking regular expression: the first alternative
// that matches at a position wins, and each quantifier is greedy but gives back what
// the rest of its alternative needs. With U = [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}],
// L = [\p{Ll}\p{Lm}\p{Lo}\p{M}] and C = (?i:'s|'t|'re|'ve|'m|'ll|'d):
//
//	1  [^\r\n\p{L}\p{N}]?U*L+C?
//	2  [^\r\n\p{L}\p{N}]?U+L*C?
//	3  \p{N}{1,3}
//	4   ?[^\s\p{L}\p{N}]+[\r\n/]*
//	5  \s*[\r\n]+
//	6  \s+(?!\S)
//	7  \s+
//
// Every character starts a match of some alternative, so the pieces cover the text
// without gaps. The scanner below implements each alternative by hand, in the same
// order and with the same backtracking outcome, in time linear in the piece; the
// regular expression engine took about a microsecond a piece and allocated for each.

// pieceEnd returns where the piece that starts at byte p of s ends. s must be valid
// UTF-8 and p < len(s) the start of a rune.
func (t *classTable) pieceEnd(s string, p int) int {
	c, n := t.at(s, p)
	if e := t.wordEnd(s, p, c, n); e > 0 {
		return e
	}
	if c&classNumber != 0 {
		return t.numberEnd(s, p)
	}
	if c&classSpace == 0 || s[p] == ' ' {
		if e := t.punctEnd(s, p); e > 0 {
			return e
		}
	}
	return t.spaceEnd(s, p)
}

// wordEnd tries alternatives 1 and 2 at p, where the rune has classes c and length n:
// each first with the optional leading character taken, then without it. It returns
// the end of the match, or -1.
func (t *classTable) wordEnd(s string, p int, c runeClass, n int) int {
	lead := c.mayLead()
	if lead {
		if e := t.lowerWordEnd(s, p+n); e > 0 {
			return e
		}
	}
	if e := t.lowerWordEnd(s, p); e > 0 {
		return e
	}
	if lead {
		if e := t.upperWordEnd(s, p+n); e > 0 {
			return e
		}
	}
	return t.upperWordEnd(s, p)
}

// lowerWordEnd matches U*L+ and an optional contraction at q, or returns
// -1. When the greedy U* leaves no L after it, the engine gives back
// runes one by one until the first given-back rune is itself in L (Lm, Lo and
// M are in both classes); L+ then matches that single rune, because the rune
// after it is not in L.
func (t *classTable) lowerWordEnd(s string, q int) int {
	i, lastBoth := q, -1
	for {
		c, n := t.at(s, i)
		if c&classUpper == 0 {
			break
		}
		if c&classLower != 0 {
			lastBoth = i
		}
		i += n
	}
	c, n := t.at(s, i)
	switch {
	case c&classLower != 0:
		for c&classLower != 0 {
			i += n
			c, n = t.at(s, i)
		}
	case lastBoth >= 0:
		_, n = t.at(s, lastBoth)
		i = lastBoth + n
	default:
		return -1
	}
	return i + contractionLen(s, i)
}

// upperWordEnd matches U+L* and an optional contraction at q, or returns
// -1.
func (t *classTable) upperWordEnd(s string, q int) int {
	c, n := t.at(s, q)
	if c&classUpper == 0 {
		return -1
	}
	i := q
	for c&classUpper != 0 {
		i += n
		c, n = t.at(s, i)
	}
	for c&classLower != 0 {
		i += n
		c, n = t.at(s, i)
	}
	return i + contractionLen(s, i)
}

// contractionLen returns the length of (?i:'s|'t|'re|'ve|'m|'ll|'d) at i, or 0. Case
// is folded the way the pattern's engine folds it, with unicode.ToLower.
func contractionLen(s string, i int) int {
	if i >= len(s) || s[i] != '\'' {
		return 0
	}
	r, n := lowerRuneAt(s, i+1)
	switch r {
	case 's', 't', 'm', 'd':
		return 1 + n
	case 'r', 'v':
		if r2, n2 := lowerRuneAt(s, i+1+n); r2 == 'e' {
			return 1 + n + n2
		}
	case 'l':
		if r2, n2 := lowerRuneAt(s, i+1+n); r2 == 'l' {
			return 1 + n + n2
		}
	}
	return 0
}

// lowerRuneAt returns the rune at byte i of s folded to lower case, and its length;
// -1 and 0 at the end of s.
func lowerRuneAt(s string, i int) (rune, int) {
	if i >= len(s) {
		return -1, 0
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	return unicode.ToLower(r), n
}

// numberEnd matches alternative 3, \p{N}{1,3}, at p, which must be a number.
func (t *classTable) numberEnd(s string, p int) int {
	i := p
	for range 3 {
		c, n := t.at(s, i)
		if c&classNumber == 0 {
			break
		}
		i += n
	}
	return i
}

// punctEnd matches alternative 4, " ?[^\s\p{L}\p{N}]+[\r\n/]*", at p, or returns -1.
// If the optional space is taken and no punctuation follows, giving the space back
// cannot help: a space is not punctuation.
func (t *classTable) punctEnd(s string, p int) int {
	i := p
	if s[i] == ' ' {
		i++
	}
	c, n := t.at(s, i)
	if !c.isPunct() || n == 0 {
		return -1
	}
	for n > 0 && c.isPunct() {
		i += n
		c, n = t.at(s, i)
	}
	for i < len(s) && (s[i] == '\r' || s[i] == '\n' || s[i] == '/') {
		i++
	}
	return i
}

// spaceEnd matches alternatives 5 to 7 at p, which must be white space. Let w be the
// end of the white space run. Alternative 5 gives back runes until the last \r or \n
// of the run and ends after it. Alternative 6 ends at w at the end of the text, and
// otherwise one rune before w, where the lookahead sees white space, if the run
// keeps at least one rune. Alternative 7 takes the whole run.
func (t *classTable) spaceEnd(s string, p int) int {
	w, lastNewline, lastStart := p, -1, p
	for {
		c, n := t.at(s, w)
		if c&classSpace == 0 {
			break
		}
		if c&classNewline != 0 {
			lastNewline = w
		}
		lastStart = w
		w += n
	}
	switch {
	case lastNewline >= 0:
		return lastNewline + 1
	case w == len(s) || lastStart == p:
		return w
	default:
		return lastStart
	}
}
