package transport

import (
	"testing"

	"github.com/stated-dev/stated/transport/wire"
)

// queueOnly is a connection whose writer is taken to be running already, so
// that what is pushed stays in its queue for the test to read.
func queueOnly(cfg Config) *conn {
	cfg.setDefaults()
	return &conn{srv: &Server{cfg: cfg, log: cfg.Logger}, writing: true}
}

func TestTheFirstDeltaOfEachAnswerIsMarkedFirst(t *testing.T) {
	c := queueOnly(Config{})
	seqs := []uint64{0, 5, 5, 0, 5, 6, 6, 5}
	want := []bool{false, true, false, false, false, true, false, true}
	for _, seq := range seqs {
		c.push(outFrame{data: []byte("{}")}, seq)
	}
	if len(c.queue) != len(want) {
		t.Fatalf("%d frames queued, want %d", len(c.queue), len(want))
	}
	for i, f := range c.queue {
		if f.first != want[i] {
			t.Errorf("frame %d (seq %d): first %v, want %v", i, seqs[i], f.first, want[i])
		}
	}
}

func TestAQueueOverItsByteBoundClosesWith4000AfterWhatItHolds(t *testing.T) {
	c := queueOnly(Config{MaxQueuedBytes: 1 << 20})
	half := make([]byte, 1<<19)
	c.push(outFrame{data: half}, 0)
	c.push(outFrame{data: half}, 0)
	if c.closed {
		t.Fatal("closed at exactly the bound")
	}
	c.push(outFrame{data: []byte("x")}, 0)
	c.push(outFrame{data: []byte("y")}, 0)
	if !c.closed || c.closeCode != wire.CloseSlowConsumer {
		t.Fatalf("closed %v with %d, want closed with %d", c.closed, c.closeCode,
			wire.CloseSlowConsumer)
	}
	if len(c.queue) != 2 || c.queuedBytes != 1<<20 {
		t.Fatalf("%d frames of %d bytes queued, want the 2 under the bound",
			len(c.queue), c.queuedBytes)
	}
}
