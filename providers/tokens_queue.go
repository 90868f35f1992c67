package providers

import (
	"math/bits"
	"slices"
)

// pairQueue hands out mergeable pairs in the order tiktoken merges them: lowest
// rank first, leftmost first among equal ranks. A binary heap of all pairs does
// this in O(log n) a pair, but a long piece has two or three pairs a byte and the
// heap's cache misses and mispredicted branches then dominate the count.
//
// The queue works in waves instead. Pairs wait in a bucket per rank, and a bitmap
// over the ranks finds the lowest non-empty bucket in three steps. A wave takes
// that bucket, sorts its offsets (they mostly arrive in order already) and hands
// them out left to right. A merge may create a pair whose rank is not above the
// wave's; such a pair must come out before the rest of the wave, so it goes to a
// small heap that is consulted before each pair of the wave. Pairs above the wave
// go to their buckets for later waves.
type pairQueue struct {
	wave    []uint64 // keys of the wave under way, ascending; wave[waveAt:] to come
	waveAt  int
	waveBuf []uint64
	cur     int64    // rank of the wave under way; -1 before the first
	urgent  pairHeap // pairs pushed at or below the wave's rank
	buckets bucketTable
	nodes   []queueNode
	ranks   rankSet // the ranks whose buckets are not empty
}

// queueNode is one pair waiting in a bucket: its offset and the node pushed to the
// same bucket before it.
type queueNode struct {
	offset int32
	next   int32
}

// reset empties the queue for a piece of n bytes. The rank set is empty already: a
// merge drains the queue to its end.
func (q *pairQueue) reset(n int) {
	q.buckets.reset(n)
	if cap(q.nodes) < 2*n {
		q.nodes = make([]queueNode, 0, 2*n)
	}
	q.nodes = append(q.nodes[:0], queueNode{}) // node 0 stands for none
	q.cur, q.wave, q.waveAt, q.urgent = -1, nil, 0, q.urgent[:0]
}

// push queues the pair at offset with rank r.
func (q *pairQueue) push(r uint32, offset int32) {
	if int64(r) <= q.cur {
		q.urgent.push(pairKey(r, offset))
		return
	}
	b := q.buckets.find(r)
	last := int32(*b)
	if last == 0 {
		q.ranks.add(r)
	}
	q.nodes = append(q.nodes, queueNode{offset: offset, next: last})
	*b = *b&^(1<<32-1) | uint64(len(q.nodes)-1)
}

// pop returns the next pair to merge, or false when the queue is empty. Pairs that
// were merged away or changed rank since they were pushed come out too; the caller
// skips them.
func (q *pairQueue) pop() (uint32, int32, bool) {
	for {
		if q.waveAt < len(q.wave) {
			k := q.wave[q.waveAt]
			if len(q.urgent) > 0 && q.urgent[0] < k {
				r, o := q.urgent.pop()
				return r, o, true
			}
			q.waveAt++
			return uint32(k >> 32), int32(uint32(k)), true
		}
		if len(q.urgent) > 0 {
			r, o := q.urgent.pop()
			return r, o, true
		}
		r, ok := q.ranks.min()
		if !ok {
			return 0, 0, false
		}
		if offset, alone := q.startWave(r); alone {
			return r, offset, true
		}
	}
}

// startWave empties bucket r, the lowest, into a wave of rank r. If the bucket holds
// one pair, as most do in text without repeats, the wave is that pair alone and
// startWave returns its offset and true instead of storing it; otherwise the wave
// holds the bucket's offsets in ascending order.
func (q *pairQueue) startWave(r uint32) (int32, bool) {
	b := q.buckets.find(r)
	last := q.nodes[int32(*b)]
	*b &^= 1<<32 - 1
	q.ranks.remove(r)
	q.cur = int64(r)
	if last.next == 0 {
		q.wave = q.wave[:0]
		return last.offset, true
	}

	wave := append(q.waveBuf[:0], pairKey(r, last.offset))
	for n := last.next; n != 0; n = q.nodes[n].next {
		wave = append(wave, pairKey(r, q.nodes[n].offset))
	}
	slices.Reverse(wave) // the bucket lists the last push first
	if !slices.IsSorted(wave) {
		slices.Sort(wave)
	}
	q.wave, q.waveAt, q.waveBuf = wave, 0, wave
	return 0, false
}

// bucketTable finds the bucket of a rank: open addressing over the ranks one piece
// uses, sized to the piece and cleared with it. A slot holds (rank+1)<<32 and the
// last node pushed to the bucket, 0 when the bucket is empty; a free slot is 0.
type bucketTable []uint64

// reset clears the table for a piece of n bytes: it never gets more than half
// full, since a piece of n bytes pushes fewer than 2n pairs.
func (t *bucketTable) reset(n int) {
	size := max(16, 1<<bits.Len(uint(4*n-1)))
	if cap(*t) < size {
		*t = make(bucketTable, size)
	}
	*t = (*t)[:size]
	clear(*t)
}

// find returns the slot of rank r, claiming a free one if r has none yet.
func (t bucketTable) find(r uint32) *uint64 {
	mask := uint64(len(t) - 1)
	want := uint64(r+1) << 32
	for i := uint64(r) * 0x9E3779B97F4A7C15 >> 32 & mask; ; i = (i + 1) & mask {
		switch s := t[i]; {
		case s == 0:
			t[i] = want
			return &t[i]
		case s&^(1<<32-1) == want:
			return &t[i]
		}
	}
}

// rankSet is a set of ranks below maxRanks as a bitmap of three levels: a bit of
// an upper level says whether its 64 bits below hold any rank.
type rankSet struct {
	top uint64
	mid [maxRanks >> 12]uint64
	low [maxRanks >> 6]uint64
}

func (s *rankSet) add(r uint32) {
	s.low[r>>6] |= 1 << (r & 63)
	s.mid[r>>12] |= 1 << (r >> 6 & 63)
	s.top |= 1 << (r >> 12)
}

func (s *rankSet) has(r uint32) bool { return s.low[r>>6]>>(r&63)&1 != 0 }

func (s *rankSet) remove(r uint32) {
	if s.low[r>>6] &^= 1 << (r & 63); s.low[r>>6] != 0 {
		return
	}
	if s.mid[r>>12] &^= 1 << (r >> 6 & 63); s.mid[r>>12] != 0 {
		return
	}
	s.top &^= 1 << (r >> 12)
}

// min returns the least rank in the set, or false if it is empty.
func (s *rankSet) min() (uint32, bool) {
	if s.top == 0 {
		return 0, false
	}
	t := uint32(bits.TrailingZeros64(s.top))
	m := t<<6 | uint32(bits.TrailingZeros64(s.mid[t]))
	return m<<6 | uint32(bits.TrailingZeros64(s.low[m])), true
}

// pairKey orders pairs by rank, then by offset.
func pairKey(rank uint32, offset int32) uint64 { return uint64(rank)<<32 | uint64(offset) }

// pairHeap is a binary min-heap of pair keys.
type pairHeap []uint64

func (h *pairHeap) push(k uint64) {
	*h = append(*h, k)
	s := *h
	i := len(s) - 1
	for i > 0 {
		up := (i - 1) / 2
		if s[up] <= k {
			break
		}
		s[i] = s[up]
		i = up
	}
	s[i] = k
}

// pop removes the least key and returns its rank and offset.
func (h *pairHeap) pop() (uint32, int32) {
	s := *h
	top := s[0]
	last := len(s) - 1
	k := s[last]
	s = s[:last]
	*h = s
	i := 0
	for {
		c := 2*i + 1
		if c >= last {
			break
		}
		if c+1 < last && s[c+1] < s[c] {
			c++
		}
		if k <= s[c] {
			break
		}
		s[i] = s[c]
		i = c
	}
	if last > 0 {
		s[i] = k
	}
	return uint32(top >> 32), int32(uint32(top))
}
