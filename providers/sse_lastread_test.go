package providers

import (
	"io"
	"testing"
	"time"
)

// partsReader serves one part per Read and notes when each Read began and ended.
type partsReader struct {
	parts []string
	began []time.Time
	ended []time.Time
}

func (r *partsReader) Read(p []byte) (int, error) {
	if len(r.parts) == 0 {
		return 0, io.EOF
	}
	r.began = append(r.began, time.Now())
	n := copy(p, r.parts[0])
	r.parts[0] = r.parts[0][n:]
	if r.parts[0] == "" {
		r.parts = r.parts[1:]
	}
	r.ended = append(r.ended, time.Now())
	return n, nil
}

func TestSSEReaderTellsWhenTheBytesThatCompletedAnEventWereRead(t *testing.T) {
	src := &partsReader{parts: []string{"data: a\n\ndata: b\n\ndata: c\n", "\n",
		": a comment and no event\n", "data: d\n\n"}}
	r := NewSSEReader(src, 0)
	if !r.LastRead().IsZero() {
		t.Fatalf("LastRead before any read is %v, want zero", r.LastRead())
	}
	// The read (by index) whose bytes completed each event.
	for i, read := range []int{0, 0, 1, 3} {
		// Let the clock move, so a time taken by Next itself would be seen.
		for start := time.Now(); !time.Now().After(start); {
		}
		called, readsBefore := time.Now(), len(src.ended)
		ev, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		at := r.LastRead()
		switch {
		case at.Before(src.ended[read]),
			read+1 < len(src.began) && at.After(src.began[read+1]):
			t.Errorf("event %d (%q) read at %v, want during read %d (ended %v)", i, ev.Data,
				at, read, src.ended[read])
		case read < readsBefore && !at.Before(called):
			t.Errorf("event %d (%q) read at %v, after Next was called (%v) for bytes "+
				"already read", i, ev.Data, at, called)
		}
	}
}
