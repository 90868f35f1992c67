package anthropic

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stated-dev/stated/providers"
)

// timedReads serves a stream in parts, one per Read, and notes when each Read
// began and ended.
type timedReads struct {
	t     *testing.T
	parts []string
	began []time.Time
	ended []time.Time
}

func (r *timedReads) Read(p []byte) (int, error) {
	if len(r.parts) == 0 {
		return 0, io.EOF
	}
	r.began = append(r.began, time.Now())
	if len(p) < len(r.parts[0]) {
		r.t.Fatalf("read buffer of %d bytes is smaller than a part of %d", len(p),
			len(r.parts[0]))
	}
	n := copy(p, r.parts[0])
	r.parts = r.parts[1:]
	r.ended = append(r.ended, time.Now())
	return n, nil
}

// cutAfterEvent returns stream cut after the event that holds marker.
func cutAfterEvent(t *testing.T, stream, marker string) []string {
	t.Helper()
	i := strings.Index(stream, marker)
	if i < 0 {
		t.Fatalf("marker %q not in the stream", marker)
	}
	end := i + strings.Index(stream[i:], "\n\n") + 2
	return []string{stream[:end], stream[end:]}
}

func TestDeltasCarryTheTimeTheirBytesWereRead(t *testing.T) {
	reads := &timedReads{t: t, parts: cutAfterEvent(t, toolStream, `"text":"Let me check."`)}
	var deltas []providers.Delta
	_, err := readStream(context.Background(), reads, func(d providers.Delta) {
		deltas = append(deltas, d)
		// Let the clock move, so a delta stamped when it is decoded instead of when
		// its bytes were read would carry a later time than the one before it.
		for start := time.Now(); !time.Now().After(start); {
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	checkReadTimes(t, deltas, reads)
}

// checkReadTimes checks that the first delta carries the time of the first Read
// and every other delta the time of the second.
func checkReadTimes(t *testing.T, deltas []providers.Delta, reads *timedReads) {
	t.Helper()
	if len(deltas) < 3 || len(reads.began) < 2 {
		t.Fatalf("%d deltas over %d reads, want at least 3 over 2", len(deltas),
			len(reads.began))
	}
	if at := deltas[0].At; at.Before(reads.ended[0]) || at.After(reads.began[1]) {
		t.Errorf("first delta read at %v, want between %v and %v", at, reads.ended[0],
			reads.began[1])
	}
	for i, d := range deltas[1:] {
		if !d.At.Equal(deltas[1].At) || d.At.Before(reads.ended[1]) {
			t.Errorf("delta %d read at %v, want %v, the end of the second read (%v)", i+1,
				d.At, deltas[1].At, reads.ended[1])
		}
	}
}
