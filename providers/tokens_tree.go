package providers

import "math/bits"

// noKey is the tree key of a pair that is not in the vocabulary or of a part that
// was merged away: above every real key.
const noKey = ^uint64(0)

// mergeTree returns the number of tokens in piece, like mergeWaves, but finds the
// next pair with a tournament tree: a leaf per byte offset holds the key of the
// pair that starts there, and every node the least key below it, so the root is
// the pair tiktoken merges next. A merge changes three leaves (the pairs on both
// sides, and the one merged away) and the nodes above them, up to the first node
// that stays the same. There are no stale entries to skip and no sorting, which
// makes it the faster merge for ASCII text without repeats; in a run of one
// character every merge changes the least key, and waves do better there.
func (c *counter) mergeTree(piece string) int {
	n := len(piece)
	sc := &c.merge
	sc.sizeFor(n)
	next, prev, token := sc.next, sc.prev, sc.token
	leaves := 1 << bits.Len(uint(n-1))
	if cap(sc.tree) < 2*leaves {
		sc.tree = make([]uint64, 2*leaves)
	}
	tree := sc.tree[:2*leaves]
	for i := range next {
		next[i], prev[i] = int32(i)+1, int32(i)-1
		token[i] = c.vocab.byteToken(piece[i])
	}
	for i := range leaves {
		tree[leaves+i] = noKey
		if i+1 < n {
			tree[leaves+i] = treeKey(c.vocab.byteRank(piece[i], piece[i+1]), int32(i))
		}
	}
	for i := leaves - 1; i > 0; i-- {
		tree[i] = min(tree[2*i], tree[2*i+1])
	}

	parts := n
	for tree[1] != noKey {
		r, i := uint32(tree[1]>>32), int32(uint32(tree[1]))
		j := next[i]
		k := next[j]
		next[i] = k
		if int(k) < n {
			prev[k] = i
		}
		token[i] = r
		parts--

		setLeaf(tree, j, noKey)
		key := noKey
		if int(k) < n {
			key = treeKey(c.pairRank(r, token[k]), i)
		}
		setLeaf(tree, i, key)
		if h := prev[i]; h >= 0 {
			setLeaf(tree, h, treeKey(c.pairRank(token[h], r), h))
		}
	}
	return parts
}

// treeKey orders pairs by rank, then by offset; a pair of noRank gets noKey.
func treeKey(rank uint32, offset int32) uint64 {
	if rank == noRank {
		return noKey
	}
	return uint64(rank)<<32 | uint64(offset)
}

// setLeaf stores key at leaf and restores the least keys above it.
func setLeaf(tree []uint64, leaf int32, key uint64) {
	i := len(tree)/2 + int(leaf)
	tree[i] = key
	for i > 1 {
		i >>= 1
		least := min(tree[2*i], tree[2*i+1])
		if tree[i] == least {
			return // nothing above changes either
		}
		tree[i] = least
	}
}

// wavesFaster reports whether mergeWaves is likely the faster merge for piece: when
// most bytes repeat the byte two before, as in runs of one character or of two
// alternating ones, or when most bytes are not ASCII, as in CJK or emoji, whose
// first merges join the bytes of each character and share their ranks widely.
// Either merge counts exactly; this only picks the faster.
func wavesFaster(piece string) bool {
	repeats, high := 0, 0
	for i := range len(piece) {
		if i >= 2 && piece[i] == piece[i-2] {
			repeats++
		}
		if piece[i] >= 0x80 {
			high++
		}
	}
	return 2*repeats >= len(piece) || 2*high >= len(piece)
}
