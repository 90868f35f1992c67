package anthropic

import (
	"context"
	"testing"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/providers/internal/readtest"
)

func TestDeltasCarryTheTimeTheirBytesWereRead(t *testing.T) {
	reads := &readtest.TimedReads{T: t,
		Parts: readtest.CutAfterEvent(t, toolStream, `"text":"Let me check."`)}
	var deltas []providers.Delta
	_, err := readStream(context.Background(), reads, func(d providers.Delta) {
		deltas = append(deltas, d)
		readtest.Slow()
	})
	if err != nil {
		t.Fatal(err)
	}
	readtest.CheckReadTimes(t, deltas, reads)
}
