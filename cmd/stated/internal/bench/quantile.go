package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Histogram is one latency histogram of /stats: counts since the server started.
type Histogram struct {
	Count uint64  `json:"count"`
	SumMS float64 `json:"sum_ms"`
	// MaxMS is the exact largest duration recorded since the server started.
	MaxMS float64 `json:"max_ms"`
	// Buckets are the non-empty buckets, ascending by upper bound; each counts
	// its own durations only.
	Buckets []Bucket `json:"buckets"`
}

// Bucket is one bucket of a Histogram: how many durations fell at or below
// UpperMS and above the bound of the bucket before it. On the wire it is the
// pair [upper_bound_ms, count].
type Bucket struct {
	UpperMS float64
	Count   uint64
}

// UnmarshalJSON reads the pair [upper_bound_ms, count].
func (b *Bucket) UnmarshalJSON(data []byte) error {
	var pair []json.Number
	if err := json.Unmarshal(data, &pair); err != nil {
		return err
	}
	if len(pair) != 2 {
		return fmt.Errorf("bench: a bucket is a pair, not %d numbers", len(pair))
	}
	upper, err := pair[0].Float64()
	if err != nil {
		return fmt.Errorf("bench: bucket bound: %w", err)
	}
	count, err := parseCount(pair[1])
	if err != nil {
		return err
	}
	b.UpperMS, b.Count = upper, count
	return nil
}

// MarshalJSON writes the pair [upper_bound_ms, count].
func (b Bucket) MarshalJSON() ([]byte, error) {
	return json.Marshal([2]any{b.UpperMS, b.Count})
}

func parseCount(n json.Number) (uint64, error) {
	f, err := n.Float64()
	if err != nil || f < 0 || f != math.Trunc(f) || f > 1<<53 {
		return 0, fmt.Errorf("bench: bucket count %s is not a count", n)
	}
	return uint64(f), nil
}

// check verifies what the quantile arithmetic relies on: bounds positive and
// strictly ascending, counts summing to Count.
func (h Histogram) check() error {
	var sum uint64
	for i, b := range h.Buckets {
		if !(b.UpperMS > 0) || math.IsInf(b.UpperMS, 0) {
			return fmt.Errorf("bucket bound %g is not a positive number", b.UpperMS)
		}
		if i > 0 && b.UpperMS <= h.Buckets[i-1].UpperMS {
			return errors.New("bucket bounds are not ascending")
		}
		sum += b.Count
	}
	if sum != h.Count {
		return fmt.Errorf("buckets count %d, the histogram %d", sum, h.Count)
	}
	return nil
}

// Quantiles summarizes the durations of a window, in milliseconds. Count is how
// many there were; with none, every figure is 0. P50 <= P99 <= Max always.
type Quantiles struct {
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
	Count uint64  `json:"count"`
}

// Window returns the durations recorded between two snapshots of one histogram:
// after minus before, bucket by bucket. ErrStatsReset when after counts less
// than before in some bucket (the server restarted in between).
func Window(before, after Histogram) (Histogram, error) {
	out := Histogram{MaxMS: after.MaxMS, SumMS: after.SumMS - before.SumMS}
	i := 0
	for _, a := range after.Buckets {
		for i < len(before.Buckets) && before.Buckets[i].UpperMS < a.UpperMS {
			if before.Buckets[i].Count > 0 {
				return Histogram{}, fmt.Errorf("%w: bucket %g ms emptied", ErrStatsReset,
					before.Buckets[i].UpperMS)
			}
			i++
		}
		n := a.Count
		if i < len(before.Buckets) && before.Buckets[i].UpperMS == a.UpperMS {
			if before.Buckets[i].Count > n {
				return Histogram{}, fmt.Errorf("%w: bucket %g ms", ErrStatsReset, a.UpperMS)
			}
			n -= before.Buckets[i].Count
			i++
		}
		if n > 0 {
			out.Buckets = append(out.Buckets, Bucket{UpperMS: a.UpperMS, Count: n})
			out.Count += n
		}
	}
	for ; i < len(before.Buckets); i++ {
		if before.Buckets[i].Count > 0 {
			return Histogram{}, fmt.Errorf("%w: bucket %g ms emptied", ErrStatsReset,
				before.Buckets[i].UpperMS)
		}
	}
	out.MaxMS = windowMax(before, after, out)
	return out, nil
}

// windowMax is the largest duration of the window w between before and after.
// When the maximum since start grew, the window holds it and it is exact;
// otherwise the window's largest bucket bounds it, and the maximum since start
// bounds that.
func windowMax(before, after, w Histogram) float64 {
	if len(w.Buckets) == 0 {
		return 0
	}
	if after.MaxMS > before.MaxMS {
		return after.MaxMS
	}
	return math.Min(w.Buckets[len(w.Buckets)-1].UpperMS, after.MaxMS)
}

// Quantiles returns the p50, p99 and max of h. A quantile q is the upper bound
// of the bucket where the running count first reaches q × Count, as the /stats
// contract says; since a bound may lie above every duration of its bucket, the
// quantiles are capped at the maximum.
func (h Histogram) Quantiles() Quantiles {
	if h.Count == 0 {
		return Quantiles{}
	}
	q := Quantiles{Max: h.MaxMS, Count: h.Count}
	q.P50 = math.Min(h.quantile(0.50), h.MaxMS)
	q.P99 = math.Min(h.quantile(0.99), h.MaxMS)
	return q
}

// quantile is the upper bound of the bucket where the running count first
// reaches q × Count.
func (h Histogram) quantile(q float64) float64 {
	target := rank(q, h.Count)
	var run uint64
	for _, b := range h.Buckets {
		run += b.Count
		if run >= target {
			return b.UpperMS
		}
	}
	return h.Buckets[len(h.Buckets)-1].UpperMS
}

// rank is the smallest count that reaches q × n, at least 1; the small slack
// keeps 0.99 × 100 at 99 despite floating point.
func rank(q float64, n uint64) uint64 {
	r := uint64(math.Ceil(q*float64(n) - 1e-9))
	return max(r, 1)
}

// durationQuantiles summarizes durations measured one by one (the client's
// own), exactly: the q quantile is the smallest duration that at least q × n
// of them do not exceed. It sorts ds.
func durationQuantiles(ds []time.Duration) Quantiles {
	if len(ds) == 0 {
		return Quantiles{}
	}
	slices.Sort(ds)
	at := func(q float64) float64 { return ms(ds[rank(q, uint64(len(ds)))-1]) }
	return Quantiles{P50: at(0.50), P99: at(0.99), Max: ms(ds[len(ds)-1]),
		Count: uint64(len(ds))}
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
