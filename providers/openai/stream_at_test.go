package openai

import (
	"context"
	"io"
	"testing"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/providers/internal/readtest"
)

func TestDeltasCarryTheTimeTheirBytesWereRead(t *testing.T) {
	cases := []struct {
		name, stream, marker string
		read                 func(io.Reader, func(providers.Delta)) error
	}{
		{"a chat completions stream", textStream, `"content":"Hel"`,
			func(r io.Reader, onDelta func(providers.Delta)) error {
				_, err := readStream(context.Background(), r, onDelta, &openAIUsage)
				return err
			}},
		{"a responses stream", respTextStream, `"delta":"Hel"`,
			func(r io.Reader, onDelta func(providers.Delta)) error {
				_, err := readResponsesStream(context.Background(), r, onDelta)
				return err
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reads := &readtest.TimedReads{T: t,
				Parts: readtest.CutAfterEvent(t, c.stream, c.marker)}
			var deltas []providers.Delta
			err := c.read(reads, func(d providers.Delta) {
				deltas = append(deltas, d)
				readtest.Slow()
			})
			if err != nil {
				t.Fatal(err)
			}
			readtest.CheckReadTimes(t, deltas, reads)
		})
	}
}
