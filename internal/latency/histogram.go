// Package latency records durations in lock-free log-linear histograms: exact
// count, sum and maximum, and buckets whose width is at most 1/32 (3.125%) of
// their lower bound, from 1 µs to about 71 minutes.
package latency

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// subBits is log2 of the sub-buckets per power of two: 32 sub-buckets keep each
// bucket's width within 3.125% of its lower bound.
const subBits = 5

const (
	subBuckets = 1 << subBits
	// octaves is the number of powers of two covered above 1 µs: 2^32 µs is
	// about 71.6 minutes.
	octaves = 32
	// fracBits is the fixed-point precision of the microsecond value a bucket
	// index is computed from; it must be at least subBits so that the narrowest
	// buckets (1/32 µs) are told apart exactly.
	fracBits = 10
	// numBuckets counts the buckets: one below 1 µs, the log-linear ones, and
	// one overflow bucket for the rest.
	numBuckets = 1 + octaves*subBuckets + 1
	// overflowNS is the smallest duration in the overflow bucket.
	overflowNS = int64(1000) << octaves
	// overflowBound is the least Upper of the overflow bucket, one nanosecond
	// past the bound of the highest regular bucket.
	overflowBound = time.Duration(overflowNS + 1)
)

// Histogram counts durations. Its zero value is empty and ready to use; it must
// not be copied after first use. Record and Snapshot may run concurrently from
// any number of goroutines; neither takes a lock nor allocates (Snapshot
// allocates its result only).
type Histogram struct {
	count  atomic.Int64
	sumNS  atomic.Int64
	maxNS  atomic.Int64
	counts [numBuckets]atomic.Int64
}

// Record counts one duration. A negative duration counts as zero.
func (h *Histogram) Record(d time.Duration) {
	ns := max(int64(d), 0)
	h.counts[bucketOf(ns)].Add(1)
	h.sumNS.Add(ns)
	h.count.Add(1)
	for {
		cur := h.maxNS.Load()
		if ns <= cur || h.maxNS.CompareAndSwap(cur, ns) {
			return
		}
	}
}

// bucketOf returns the index of the bucket that holds ns nanoseconds.
func bucketOf(ns int64) int {
	switch {
	case ns < 1000:
		return 0
	case ns >= overflowNS:
		return numBuckets - 1
	}
	// x is the duration in microseconds with fracBits fractional bits, rounded
	// down; bucket bounds are whole multiples of x's unit, so the rounding
	// never moves a duration across a bound.
	x := uint64(ns) << fracBits / 1000
	msb := bits.Len64(x) - 1
	octave := msb - fracBits
	sub := int(x>>(msb-subBits)) & (subBuckets - 1)
	return 1 + octave*subBuckets + sub
}

// upperOf returns the upper bound of bucket i, rounded up to the nanosecond:
// every duration counted in the bucket is below it. The overflow bucket has no
// bound of its own; upperOf returns 0 for it.
func upperOf(i int) time.Duration {
	switch {
	case i == 0:
		return time.Microsecond
	case i >= numBuckets-1:
		return 0
	}
	octave, sub := (i-1)/subBuckets, (i-1)%subBuckets
	num := int64(1000) << octave * int64(subBuckets+sub+1)
	return time.Duration((num + subBuckets - 1) / subBuckets)
}
