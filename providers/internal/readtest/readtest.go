// Package readtest helps the adapters' tests check that deltas carry the time
// their bytes were read from the provider's stream (providers.Delta.At).
package readtest

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stated-dev/stated/providers"
)

// TimedReads serves a stream in parts, one per Read, and notes when each Read
// began and ended.
type TimedReads struct {
	T     testing.TB
	Parts []string
	Began []time.Time
	Ended []time.Time
}

// Read copies the next part into p; it fails the test when p cannot hold it.
func (r *TimedReads) Read(p []byte) (int, error) {
	if len(r.Parts) == 0 {
		return 0, io.EOF
	}
	r.Began = append(r.Began, time.Now())
	if len(p) < len(r.Parts[0]) {
		r.T.Fatalf("read buffer of %d bytes is smaller than a part of %d", len(p),
			len(r.Parts[0]))
	}
	n := copy(p, r.Parts[0])
	r.Parts = r.Parts[1:]
	r.Ended = append(r.Ended, time.Now())
	return n, nil
}

// CutAfterEvent returns stream cut in two after the server-sent event that holds
// marker.
func CutAfterEvent(t testing.TB, stream, marker string) []string {
	t.Helper()
	i := strings.Index(stream, marker)
	if i < 0 {
		t.Fatalf("marker %q not in the stream", marker)
	}
	end := i + strings.Index(stream[i:], "\n\n") + 2
	return []string{stream[:end], stream[end:]}
}

// Slow lets the clock move before it returns, so that a delta stamped when it is
// decoded instead of when its bytes were read carries a later time than the one
// before it.
func Slow() {
	for start := time.Now(); !time.Now().After(start); {
	}
}

// CheckReadTimes checks that the first delta carries the time of the first Read
// and every other delta the time of the second.
func CheckReadTimes(t testing.TB, deltas []providers.Delta, reads *TimedReads) {
	t.Helper()
	if len(deltas) < 3 || len(reads.Began) < 2 {
		t.Fatalf("%d deltas over %d reads, want at least 3 over 2", len(deltas),
			len(reads.Began))
	}
	if at := deltas[0].At; at.Before(reads.Ended[0]) || at.After(reads.Began[1]) {
		t.Errorf("first delta read at %v, want between %v and %v", at, reads.Ended[0],
			reads.Began[1])
	}
	for i, d := range deltas[1:] {
		if !d.At.Equal(deltas[1].At) || d.At.Before(reads.Ended[1]) {
			t.Errorf("delta %d read at %v, want %v, the end of the second read (%v)", i+1,
				d.At, deltas[1].At, reads.Ended[1])
		}
	}
}
