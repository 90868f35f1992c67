package latency

import (
	"math"
	"time"
)

// Bucket is one non-empty bucket of a Snapshot: Count durations were recorded in
// it, each at most Upper. Every bucket's width is at most 3.125% of its lower
// bound, except the first (below 1 µs) and the overflow bucket (past about 71
// minutes), whose Upper is the histogram's maximum.
type Bucket struct {
	Upper time.Duration
	Count int64
}

// Snapshot is a copy of a Histogram's figures at one moment.
type Snapshot struct {
	// Count is the number of durations recorded; it equals the sum of the
	// buckets' counts.
	Count int64
	// Sum is the total of the durations recorded. A Record running during the
	// snapshot may be in the buckets and not yet in Sum, or the reverse.
	Sum time.Duration
	// Max is the largest duration recorded, exactly; zero when Count is zero.
	Max time.Duration
	// Buckets holds the non-empty buckets, ascending by Upper.
	Buckets []Bucket
}

// Snapshot returns the histogram's figures. It allocates only its result.
func (h *Histogram) Snapshot() Snapshot {
	var s Snapshot
	n := 0
	for i := range h.counts {
		if h.counts[i].Load() != 0 {
			n++
		}
	}
	s.Buckets = make([]Bucket, 0, n)
	s.Sum = time.Duration(h.sumNS.Load())
	s.Max = time.Duration(h.maxNS.Load())
	for i := range h.counts {
		c := h.counts[i].Load()
		if c == 0 {
			continue
		}
		up := upperOf(i)
		if i == numBuckets-1 {
			up = max(s.Max, overflowBound)
		}
		s.Buckets = append(s.Buckets, Bucket{Upper: up, Count: c})
		s.Count += c
	}
	return s
}

// Quantile returns the upper bound of the bucket where the running count first
// reaches q × Count, which is at least the true q-quantile and at most 3.125%
// above it (for durations from 1 µs to about 71 minutes). q is clamped to
// [0, 1]; an empty snapshot returns 0. Quantile(1) is the bound of the highest
// bucket, not Max: Max is exact.
func (s Snapshot) Quantile(q float64) time.Duration {
	if s.Count == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := int64(math.Ceil(q * float64(s.Count)))
	var run int64
	for _, b := range s.Buckets {
		run += b.Count
		if run >= rank {
			return b.Upper
		}
	}
	return s.Buckets[len(s.Buckets)-1].Upper
}

// Mean returns Sum / Count, or 0 when Count is zero.
func (s Snapshot) Mean() time.Duration {
	if s.Count == 0 {
		return 0
	}
	return s.Sum / time.Duration(s.Count)
}

// Sub returns the figures of the window between prev and s, two snapshots of one
// histogram with prev taken first: counts and sums are subtracted bucket by
// bucket. Max stays s.Max, the maximum since the start, since a window's own
// maximum is not kept.
func (s Snapshot) Sub(prev Snapshot) Snapshot {
	out := Snapshot{Count: 0, Sum: s.Sum - prev.Sum, Max: s.Max}
	out.Buckets = make([]Bucket, 0, len(s.Buckets))
	j := 0
	for _, b := range s.Buckets {
		for j < len(prev.Buckets) && keyOf(prev.Buckets[j]) < keyOf(b) {
			j++
		}
		c := b.Count
		if j < len(prev.Buckets) && keyOf(prev.Buckets[j]) == keyOf(b) {
			c -= prev.Buckets[j].Count
		}
		if c > 0 {
			out.Buckets = append(out.Buckets, Bucket{Upper: b.Upper, Count: c})
			out.Count += c
		}
	}
	return out
}

// keyOf identifies a bucket across snapshots: the overflow bucket's Upper is the
// maximum at the time, which moves.
func keyOf(b Bucket) time.Duration {
	return min(b.Upper, overflowBound)
}
