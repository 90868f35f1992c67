package providers

import "math"

// Byte pair encoding of one piece: start from single bytes and, again and again,
// merge the adjacent pair whose concatenation has the lowest rank in the vocabulary,
// the leftmost one on a tie, until no adjacent pair is in the vocabulary. The number
// of parts left is the number of tokens. Three merges give exactly the parts
// tiktoken's own merge gives and differ only in how they find the next pair:
// mergeSmall scans all pairs (short pieces), mergeTree keeps a tournament tree
// (longer pieces) and mergeWaves a queue that works in waves of one rank (long runs
// of one or two characters, where most pairs share a rank). tiktoken scans all
// pairs and moves the rest down after each merge, quadratic in the piece.

// noRank marks a pair that is not in the vocabulary, and a part that was merged away.
const noRank = math.MaxUint32

// smallPiece is the longest piece merged by scanning all pairs for the lowest rank
// at every step: quadratic, but without set-up, and the fastest for short pieces.
const smallPiece = 16

// mergeSmall returns the number of tokens in piece, of 2 to smallPiece bytes.
func (c *counter) mergeSmall(piece string) int {
	var token, rank [smallPiece]uint32 // of part i and of the pair it starts
	parts := len(piece)
	for i := range parts {
		token[i] = c.vocab.byteToken(piece[i])
		rank[i] = noRank
		if i+1 < parts {
			rank[i] = c.vocab.byteRank(piece[i], piece[i+1])
		}
	}

	for parts > 1 {
		// The least rank, leftmost on a tie, found without a branch per pair.
		least := uint64(noRank) << 8
		for j := range parts - 1 {
			least = min(least, uint64(rank[j])<<8|uint64(j))
		}
		if least>>8 == noRank {
			break
		}
		i := int(least & 0xFF)

		// Merge part i with the next: the pairs on both sides of it change.
		token[i] = rank[i]
		copy(token[i+1:parts-1], token[i+2:parts])
		copy(rank[i+1:parts-1], rank[i+2:parts])
		parts--
		rank[i] = noRank
		if i+1 < parts {
			rank[i] = c.pairRank(token[i], token[i+1])
		}
		if i > 0 {
			rank[i-1] = c.pairRank(token[i-1], token[i])
		}
	}
	return parts
}

// mergeScratch is the working memory of mergeWaves and mergeTree.
type mergeScratch struct {
	next  []int32  // next[i]: where the part after the part that starts at i starts
	prev  []int32  // prev[i]: where the part before it starts, or -1
	token []uint32 // token[i]: the token of the part that starts at i
	rank  []uint32 // rank[i]: rank of the pair that starts at i, or noRank
	queue pairQueue
	tree  []uint64 // the tournament tree of mergeTree
}

// sizeFor makes the arrays of the scratch n long.
func (sc *mergeScratch) sizeFor(n int) {
	if cap(sc.next) < n {
		sc.next = make([]int32, n)
		sc.prev = make([]int32, n)
		sc.token = make([]uint32, n)
		sc.rank = make([]uint32, n)
	}
	sc.next, sc.prev, sc.token, sc.rank = sc.next[:n], sc.prev[:n], sc.token[:n], sc.rank[:n]
}

// start makes the scratch hold piece as one part a byte, with every pair of bytes
// that is a token queued.
func (sc *mergeScratch) start(piece string, v *vocabulary) {
	n := len(piece)
	sc.sizeFor(n)
	sc.queue.reset(n)
	for i := range sc.next {
		sc.next[i], sc.prev[i] = int32(i)+1, int32(i)-1
		sc.token[i] = v.byteToken(piece[i])
	}
	sc.rank[n-1] = noRank
	for i := range sc.rank[:n-1] {
		sc.rank[i] = v.byteRank(piece[i], piece[i+1])
		if sc.rank[i] != noRank {
			sc.queue.push(sc.rank[i], int32(i))
		}
	}
}

// mergeWaves returns the number of tokens in piece, in about O(n log n) for n bytes.
// The parts form a linked list over byte offsets and a pairQueue hands out the
// pair tiktoken merges next. A merge changes the pairs on both sides; their new
// ranks are queued and the old entries are skipped when they come up, since their
// rank no longer matches.
func (c *counter) mergeWaves(piece string) int {
	sc := &c.merge
	sc.start(piece, c.vocab)
	next, prev, token, rank, q := sc.next, sc.prev, sc.token, sc.rank, &sc.queue
	n, parts := int32(len(piece)), len(piece)
	for {
		r, i, ok := q.pop()
		if !ok {
			return parts
		}
		if rank[i] != r {
			continue
		}

		// Merge the part at i with the next, j; k is the part after them.
		j := next[i]
		k := next[j]
		next[i] = k
		if k < n {
			prev[k] = i
		}
		rank[j] = noRank
		token[i] = r
		parts--

		rank[i] = noRank
		if k < n {
			// If the pair at k has the rank just merged, it comes out of the queue
			// before the new pair at i can, unless that ranks lower, and its merge
			// changes the pair at i and queues it again: queuing it now would only
			// leave a stale entry, as it would all along a run of one character.
			rank[i] = c.pairRank(r, token[k])
			if rank[i] != noRank && (rank[k] != r || rank[i] < r) {
				q.push(rank[i], i)
			}
		}
		if h := prev[i]; h >= 0 {
			if rank[h] = c.pairRank(token[h], r); rank[h] != noRank {
				q.push(rank[h], h)
			}
		}
	}
}
