package providers

import (
	"unicode"
	"unicode/utf8"
)

// runeClass holds the character classes of the o200k_base pre-tokenizer pattern that
// a rune belongs to, as bits. The pattern is defined over these classes only, so one
// table look-up per rune replaces the regular expression's Unicode tests.
type runeClass uint8

const (
	// classUpper is [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]: what a word may start with.
	classUpper runeClass = 1 << iota
	// classLower is [\p{Ll}\p{Lm}\p{Lo}\p{M}]: what a word may go on with.
	classLower
	// classLetter is \p{L}.
	classLetter
	// classNumber is \p{N}.
	classNumber
	// classSpace is \s, which the pattern's engine defines as unicode.IsSpace.
	classSpace
	// classNewline is \r or \n.
	classNewline
)

// mayLead reports whether c is in [^\r\n\p{L}\p{N}]: the optional character that may
// stand before a word.
func (c runeClass) mayLead() bool { return c&(classNewline|classLetter|classNumber) == 0 }

// isPunct reports whether c is in [^\s\p{L}\p{N}]: punctuation, symbols, marks and
// control characters that are not white space.
func (c runeClass) isPunct() bool { return c&(classSpace|classLetter|classNumber) == 0 }

// classBlock is how many consecutive code points share one block of the table.
const classBlock = 256

// classTable maps every code point to its runeClass in two steps: the index names
// a block of classBlock classes, and equal blocks are stored once (about 43 KiB in
// all instead of 1.1 MiB). The first block is that of U+0000 to U+00FF, which at
// reads directly for ASCII.
type classTable struct {
	index  [(unicode.MaxRune + 1) / classBlock]uint16
	blocks []runeClass
}

// of returns the classes of r, which must be a valid code point.
func (t *classTable) of(r rune) runeClass {
	return t.blocks[int(t.index[r/classBlock])*classBlock+int(r%classBlock)]
}

// at returns the classes and the length in bytes of the rune that starts at byte i
// of s, which must be valid UTF-8, or 0 and 0 at the end of s.
func (t *classTable) at(s string, i int) (runeClass, int) {
	if i >= len(s) {
		return 0, 0
	}
	if b := s[i]; b < utf8.RuneSelf {
		return t.blocks[b], 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	return t.of(r), n
}

// newClassTable builds the table from the same Unicode tables the o200k_base pattern
// names, so that it agrees with the regular expression engine rune for rune.
func newClassTable() *classTable {
	flat := make([]runeClass, unicode.MaxRune+1)
	for _, m := range []struct {
		table *unicode.RangeTable
		class runeClass
	}{
		{unicode.Lu, classUpper},
		{unicode.Lt, classUpper},
		{unicode.Lm, classUpper | classLower},
		{unicode.Lo, classUpper | classLower},
		{unicode.M, classUpper | classLower},
		{unicode.Ll, classLower},
		{unicode.L, classLetter},
		{unicode.N, classNumber},
		{unicode.White_Space, classSpace},
	} {
		markClass(flat, m.table, m.class)
	}
	flat['\r'] |= classNewline
	flat['\n'] |= classNewline

	t := &classTable{}
	seen := make(map[string]uint16)
	for b := range t.index {
		block := flat[b*classBlock : (b+1)*classBlock]
		key := string(block)
		id, ok := seen[key]
		if !ok {
			id = uint16(len(seen))
			seen[key] = id
			t.blocks = append(t.blocks, block...)
		}
		t.index[b] = id
	}
	return t
}

// markClass adds class to every code point of table in flat.
func markClass(flat []runeClass, table *unicode.RangeTable, class runeClass) {
	for _, r := range table.R16 {
		for c := rune(r.Lo); c <= rune(r.Hi); c += rune(r.Stride) {
			flat[c] |= class
		}
	}
	for _, r := range table.R32 {
		for c := rune(r.Lo); c <= rune(r.Hi); c += rune(r.Stride) {
			flat[c] |= class
		}
	}
}
