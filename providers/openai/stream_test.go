package openai

import (
	"context"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stated-dev/stated/providers"
)

// TestReadStreamGivesTheSameAnswerAtEveryByteOffset cuts the stream below HTTP,
// where the transport cannot merge the pieces again.
func TestReadStreamGivesTheSameAnswerAtEveryByteOffset(t *testing.T) {
	read := func(r io.Reader) (*providers.Response, []providers.Delta) {
		t.Helper()
		var log deltaLog
		resp, err := readStream(context.Background(), r, log.add)
		if err != nil {
			t.Fatal(err)
		}
		return resp, log.deltas
	}
	for _, stream := range []string{textStream, toolStream} {
		want, wantDeltas := read(strings.NewReader(stream))
		for at := 0; at <= len(stream); at++ {
			got, deltas := read(io.MultiReader(strings.NewReader(stream[:at]),
				strings.NewReader(stream[at:])))
			if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(deltas, wantDeltas) {
				t.Fatalf("split at %d: %+v %+v, want %+v %+v", at, got, deltas, want, wantDeltas)
			}
		}
		got, deltas := read(iotest.OneByteReader(strings.NewReader(stream)))
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(deltas, wantDeltas) {
			t.Fatalf("one byte at a time: %+v, want %+v", got, want)
		}
	}
}

func TestUsageNeverGoesNegative(t *testing.T) {
	d := &decoder{}
	d.takeUsage(&wireUsage{PromptTokens: 10, CompletionTokens: 3,
		PromptTokensDetails: &struct {
			CachedTokens int `json:"cached_tokens"`
		}{CachedTokens: 50}})
	want := providers.Usage{InputTokens: 0, CacheReadTokens: 10, OutputTokens: 3}
	if d.usage != want {
		t.Fatalf("usage %+v, want %+v", d.usage, want)
	}
}
