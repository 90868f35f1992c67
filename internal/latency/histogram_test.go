package latency

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func TestBucketsHoldTheirDurationsWithinThreePercent(t *testing.T) {
	// Every bucket's bounds, walked in order: each starts where the one before
	// ended and is at most 1/32 of its lower bound wide.
	lower := time.Microsecond
	for i := 1; i < numBuckets-1; i++ {
		upper := upperOf(i)
		if upper <= lower {
			t.Fatalf("bucket %d: upper %v not above lower %v", i, upper, lower)
		}
		// Bounds are rounded up to the nanosecond: that nanosecond aside, the width
		// is at most 1/32 of the lower bound.
		if width := float64(upper-lower-1) / float64(lower); width > 1.0/32 {
			t.Fatalf("bucket %d [%v, %v): width %.4f of its lower bound, want <= 1/32", i,
				lower, upper, width)
		}
		lower = upper
	}
	if lower < time.Hour {
		t.Fatalf("buckets end at %v, want past an hour", lower)
	}
}

func TestEachDurationLandsInTheBucketThatHoldsIt(t *testing.T) {
	cases := []struct {
		name string
		d    time.Duration
	}{
		{"zero", 0},
		{"just under a microsecond", 999},
		{"exactly a microsecond", time.Microsecond},
		{"just past a microsecond", 1001},
		{"a bound between two narrow buckets", 1031},
		{"the next nanosecond", 1032},
		{"fifteen and a half microseconds", 15500},
		{"half a millisecond", 500 * time.Microsecond},
		{"two milliseconds", 2 * time.Millisecond},
		{"a second and a bit", time.Second + 7},
		{"an hour", time.Hour},
		{"the last nanosecond before overflow", time.Duration(overflowNS - 1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			i := bucketOf(int64(c.d))
			lower := time.Duration(0)
			if i > 0 {
				lower = upperOf(i - 1)
			}
			if c.d < lower || c.d > upperOf(i) {
				t.Errorf("%v in bucket %d [%v, %v]", c.d, i, lower, upperOf(i))
			}
		})
	}
}

func TestRandomDurationsLandWithinTheirBucket(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		d := time.Duration(rng.Int64N(int64(2 * time.Hour)))
		if rng.IntN(2) == 0 {
			d = time.Duration(rng.Int64N(int64(10 * time.Millisecond)))
		}
		i := bucketOf(int64(d))
		if i == numBuckets-1 {
			if int64(d) < overflowNS {
				t.Fatalf("%v in the overflow bucket", d)
			}
			continue
		}
		lower := time.Duration(0)
		if i > 0 {
			lower = upperOf(i - 1)
		}
		if d < lower || d > upperOf(i) {
			t.Fatalf("%v in bucket %d [%v, %v]", d, i, lower, upperOf(i))
		}
		if d >= time.Microsecond {
			if rel := float64(upperOf(i)-d-1) / float64(d); rel > 1.0/32 {
				t.Fatalf("%v reported as %v: %.4f above", d, upperOf(i), rel)
			}
		}
	}
}

func TestSnapshotGivesCountSumMaxAndQuantiles(t *testing.T) {
	var h Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	h.Record(-time.Second) // counted as zero
	s := h.Snapshot()
	if s.Count != 1001 {
		t.Errorf("count %d, want 1001", s.Count)
	}
	if want := 500500 * time.Microsecond; s.Sum != want {
		t.Errorf("sum %v, want %v", s.Sum, want)
	}
	if s.Max != time.Millisecond {
		t.Errorf("max %v, want exactly 1ms", s.Max)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond},
		{0.999, 999 * time.Microsecond}, {1, time.Millisecond}} {
		got := s.Quantile(c.q)
		if got < c.want || float64(got-c.want) > float64(c.want)/32 {
			t.Errorf("quantile %v = %v, want %v to 3.125%% above", c.q, got, c.want)
		}
	}
	var total int64
	for i, b := range s.Buckets {
		total += b.Count
		if i > 0 && b.Upper <= s.Buckets[i-1].Upper {
			t.Errorf("buckets not ascending at %d: %v after %v", i, b.Upper, s.Buckets[i-1].Upper)
		}
	}
	if total != s.Count {
		t.Errorf("buckets hold %d, count says %d", total, s.Count)
	}
}

func TestAnEmptyHistogramHasNoBucketsAndZeroQuantiles(t *testing.T) {
	var h Histogram
	s := h.Snapshot()
	if s.Count != 0 || s.Max != 0 || len(s.Buckets) != 0 || s.Buckets == nil {
		t.Errorf("empty snapshot %+v, want zero figures and an empty, non-nil bucket list", s)
	}
	if q := s.Quantile(0.99); q != 0 {
		t.Errorf("quantile of nothing = %v, want 0", q)
	}
}

func TestADurationPastTheRangeIsBoundedByTheMax(t *testing.T) {
	var h Histogram
	h.Record(2 * time.Hour)
	s := h.Snapshot()
	if s.Max != 2*time.Hour || s.Quantile(0.5) != 2*time.Hour {
		t.Errorf("max %v, median %v; want both 2h", s.Max, s.Quantile(0.5))
	}
}

func TestSubGivesTheWindowBetweenTwoSnapshots(t *testing.T) {
	var h Histogram
	for range 100 {
		h.Record(10 * time.Millisecond) // before the window
	}
	prev := h.Snapshot()
	for range 10 {
		h.Record(100 * time.Microsecond)
	}
	h.Record(3 * time.Hour)
	w := h.Snapshot().Sub(prev)
	if w.Count != 11 {
		t.Fatalf("window count %d, want 11", w.Count)
	}
	if q := w.Quantile(0.9); q < 100*time.Microsecond || q > 104*time.Microsecond {
		t.Errorf("window p90 %v, want about 100µs: the earlier 10ms must not count", q)
	}
	if w.Sum != 3*time.Hour+time.Millisecond {
		t.Errorf("window sum %v, want 3h1ms", w.Sum)
	}
}

func TestConcurrentRecordsAreAllCounted(t *testing.T) {
	var h Histogram
	const workers, each = 8, 20000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				h.Record(time.Duration(w*each+i) * time.Nanosecond * 50)
			}
		})
	}
	done := make(chan struct{})
	go func() { // snapshots taken while records run must stay consistent
		defer close(done)
		for range 100 {
			s := h.Snapshot()
			var total int64
			for _, b := range s.Buckets {
				total += b.Count
			}
			if total != s.Count {
				t.Errorf("snapshot buckets hold %d, count %d", total, s.Count)
				return
			}
		}
	}()
	wg.Wait()
	<-done
	s := h.Snapshot()
	if s.Count != workers*each {
		t.Errorf("count %d, want %d", s.Count, workers*each)
	}
	if want := time.Duration(workers*each-1) * 50; s.Max != want {
		t.Errorf("max %v, want %v", s.Max, want)
	}
	var wantSum time.Duration
	for i := range workers * each {
		wantSum += time.Duration(i) * 50
	}
	if s.Sum != wantSum {
		t.Errorf("sum %v, want %v", s.Sum, wantSum)
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	var h Histogram
	if n := testing.AllocsPerRun(1000, func() { h.Record(123 * time.Microsecond) }); n != 0 {
		t.Errorf("Record allocates %v times, want 0", n)
	}
}

func BenchmarkRecord(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	d := 137 * time.Microsecond
	for b.Loop() {
		h.Record(d)
	}
}

func BenchmarkRecordParallel(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		d := 137 * time.Microsecond
		for pb.Next() {
			h.Record(d)
			d += 13
		}
	})
}

func BenchmarkSnapshot(b *testing.B) {
	var h Histogram
	for i := range 100000 {
		h.Record(time.Duration(i) * 100)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = h.Snapshot()
	}
}
