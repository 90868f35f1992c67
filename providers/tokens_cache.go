package providers

import "math/bits"

// maxCachedPiece is the longest piece whose count a pieceCache remembers: one that
// fits in a machine word.
const maxCachedPiece = 8

// pieceCache remembers the token counts of short pieces. Text repeats its short
// pieces (" the", "\n\n", "),"), and most pieces are short; a hit costs a look-up
// in 64 KiB that stays in the processor's cache instead of one in the vocabulary's
// megabytes. It is direct-mapped: a new piece replaces the one in its slot.
type pieceCache [1 << 12]pieceSlot

// pieceSlot is a piece of up to maxCachedPiece bytes packed in a word, its length
// (0 for an empty slot) and its count.
type pieceSlot struct {
	packed uint64
	size   uint8
	tokens uint8
}

// find returns the slot of piece, of 2 to maxCachedPiece bytes, and whether it
// holds piece.
func (c *pieceCache) find(piece string) (*pieceSlot, bool) {
	packed := packPiece(piece)
	h := (packed ^ uint64(len(piece))) * 0x9E3779B97F4A7C15
	slot := &c[h>>(64-12)]
	return slot, slot.packed == packed && int(slot.size) == len(piece)
}

// set makes the slot hold piece and its count.
func (s *pieceSlot) set(piece string, tokens int) {
	*s = pieceSlot{packed: packPiece(piece), size: uint8(len(piece)), tokens: uint8(tokens)}
}

// count returns the count the slot holds.
func (s *pieceSlot) count() int { return int(s.tokens) }

// packPiece packs up to eight bytes in a word.
func packPiece(piece string) uint64 {
	var w uint64
	for i := 0; i < len(piece); i++ {
		w |= uint64(piece[i]) << (8 * i)
	}
	return w
}

// pairCache remembers what the pair table said lately, in the same layout as the
// table but 64 KiB in all, direct-mapped. Pairs get there past the vocabulary's
// filter, so they are mostly tokens; a long piece asks about the same few of them
// again and again (runs of one character, the bytes of the same CJK characters),
// and a hit then stays in the processor's cache.
type pairCache [1 << 13]uint64

// pairRank returns the rank of the concatenation of tokens left and right, or noRank.
func (c *counter) pairRank(left, right uint32) uint32 {
	key := uint64(left)<<rankBits | uint64(right)
	if !c.vocab.filter.mayHave(key) {
		return noRank
	}
	slot := &c.pairs[bits.RotateLeft64(key*0x9E3779B97F4A7C15, 13)&(1<<13-1)]
	if *slot>>rankBits == key+1 {
		if r := uint32(*slot & rankMask); r != rankMask {
			return r
		}
		return noRank
	}
	r := c.vocab.lookupPair(key)
	stored := uint64(r)
	if r == noRank {
		stored = rankMask // a false "maybe" of the filter
	}
	*slot = (key+1)<<rankBits | stored
	return r
}
