package bench

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

// hist builds a histogram from [bound, count] pairs and its max.
func hist(maxMS float64, pairs ...[2]float64) Histogram {
	h := Histogram{MaxMS: maxMS}
	for _, p := range pairs {
		h.Buckets = append(h.Buckets, Bucket{UpperMS: p[0], Count: uint64(p[1])})
		h.Count += uint64(p[1])
	}
	return h
}

func TestWindowQuantiles(t *testing.T) {
	tests := []struct {
		name          string
		before, after Histogram
		want          Quantiles
	}{
		{
			name:   "a window counts only what was recorded between the snapshots",
			before: hist(1.9, [2]float64{1, 5}, [2]float64{2, 5}),
			after:  hist(1.9, [2]float64{1, 5}, [2]float64{2, 10}, [2]float64{0.5, 0}),
			want:   Quantiles{P50: 1.9, P99: 1.9, Max: 1.9, Count: 5},
		},
		{
			name:   "p50 and p99 are the bounds where the running count first reaches them",
			before: hist(0),
			after: hist(7.5, [2]float64{0.25, 50}, [2]float64{1, 49},
				[2]float64{8, 1}),
			want: Quantiles{P50: 0.25, P99: 1, Max: 7.5, Count: 100},
		},
		{
			name:   "one more duration past half moves p50 to the next bucket",
			before: hist(0),
			after:  hist(1.5, [2]float64{0.25, 50}, [2]float64{1, 51}),
			want:   Quantiles{P50: 1, P99: 1, Max: 1.5, Count: 101},
		},
		{
			name:   "a max grown during the window is exact",
			before: hist(2, [2]float64{2, 3}),
			after:  hist(30.2, [2]float64{2, 3}, [2]float64{0.5, 0}, [2]float64{31, 1}),
			want:   Quantiles{P50: 30.2, P99: 30.2, Max: 30.2, Count: 1},
		},
		{
			name: "an older max leaves the window's top bucket as its max",
			before: hist(100, [2]float64{0.1, 10},
				[2]float64{101, 1}),
			after: hist(100, [2]float64{0.1, 30}, [2]float64{0.2, 2},
				[2]float64{101, 1}),
			want: Quantiles{P50: 0.1, P99: 0.2, Max: 0.2, Count: 22},
		},
		{
			name:   "an empty window is all zeros",
			before: hist(3, [2]float64{3, 4}),
			after:  hist(3, [2]float64{3, 4}),
			want:   Quantiles{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Buckets must ascend: the helper's zero buckets are left out.
			tt.before.Buckets = nonEmpty(tt.before.Buckets)
			tt.after.Buckets = nonEmpty(tt.after.Buckets)
			w, err := Window(tt.before, tt.after)
			if err != nil {
				t.Fatal(err)
			}
			if got := w.Quantiles(); got != tt.want {
				t.Fatalf("quantiles %+v, want %+v (window %+v)", got, tt.want, w)
			}
		})
	}
}

// nonEmpty returns the buckets with a count, sorted by bound.
func nonEmpty(bs []Bucket) []Bucket {
	var out []Bucket
	for _, b := range bs {
		if b.Count > 0 {
			out = append(out, b)
		}
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].UpperMS < out[j-1].UpperMS; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func TestWindowRefusesSnapshotsThatGoBackwards(t *testing.T) {
	tests := []struct {
		name          string
		before, after Histogram
	}{
		{"a bucket that counts less", hist(1, [2]float64{1, 5}), hist(1, [2]float64{1, 4})},
		{"a bucket that vanished", hist(1, [2]float64{0.5, 1}, [2]float64{1, 1}),
			hist(1, [2]float64{1, 7})},
		{"a last bucket that vanished", hist(9, [2]float64{1, 1}, [2]float64{9, 1}),
			hist(1, [2]float64{1, 7})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Window(tt.before, tt.after); !errors.Is(err, ErrStatsReset) {
				t.Fatalf("err %v, want ErrStatsReset", err)
			}
		})
	}
}

func TestBucketsReadTheContractsPairs(t *testing.T) {
	var h Histogram
	doc := `{"count":13,"sum_ms":0.2,"max_ms":0.016,"buckets":[[0.0155,3],[0.016,10]]}`
	if err := json.Unmarshal([]byte(doc), &h); err != nil {
		t.Fatal(err)
	}
	want := []Bucket{{0.0155, 3}, {0.016, 10}}
	if !reflect.DeepEqual(h.Buckets, want) || h.check() != nil {
		t.Fatalf("buckets %+v (check %v), want %+v", h.Buckets, h.check(), want)
	}
	for _, bad := range []string{`[[1]]`, `[[1,2,3]]`, `[[1,-2]]`, `[[1,2.5]]`, `[["a",2]]`} {
		if err := json.Unmarshal([]byte(`{"buckets":`+bad+`}`), &h); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	for name, bad := range map[string]Histogram{
		"bounds out of order": hist(1, [2]float64{2, 1}, [2]float64{1, 1}),
		"count not the sum":   {Count: 3, Buckets: []Bucket{{1, 2}}},
		"a zero bound":        hist(1, [2]float64{0, 1}),
	} {
		if bad.check() == nil {
			t.Errorf("%s: check passed", name)
		}
	}
}

func TestDurationQuantilesAreExact(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := durationQuantiles(ds)
	want := Quantiles{P50: 50, P99: 99, Max: 100, Count: 100}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if got := durationQuantiles(nil); got != (Quantiles{}) {
		t.Fatalf("no durations: %+v", got)
	}
}
