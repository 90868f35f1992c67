package anthropic

import (
	"context"
	"errors"
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

func TestReadStreamRejectsArgumentsForABlockThatIsNoToolCall(t *testing.T) {
	stream := event("message_start", messageStart) +
		event("content_block_delta", `{"type":"content_block_delta","index":4,`+
			`"delta":{"type":"input_json_delta","partial_json":"{}"}}`)
	_, err := readStream(context.Background(), strings.NewReader(stream), nil)
	if !errors.Is(err, providers.ErrBadStream) {
		t.Fatalf("err %v, want a malformed stream", err)
	}
}

func TestStopReasonsMapToNeutralOnes(t *testing.T) {
	tests := []struct {
		wire string
		want providers.StopReason
	}{
		{"end_turn", providers.StopEnd},
		{"stop_sequence", providers.StopEnd},
		{"max_tokens", providers.StopMaxTokens},
		{"tool_use", providers.StopToolUse},
		{"model_context_window_exceeded", providers.StopMaxTokens},
		{"refusal", providers.StopRefusal},
		{"pause_turn", providers.StopPause},
		{"a reason the API adds later", providers.StopOther},
	}
	for _, tc := range tests {
		if got := stopReason(tc.wire); got != tc.want {
			t.Errorf("stopReason(%q) = %q, want %q", tc.wire, got, tc.want)
		}
	}
}

// FuzzReadStream feeds the Messages decoder arbitrary bytes, seeded with whole and
// partial streams: it must never panic, a clean end must give a complete answer,
// and the deltas must always add up to the answer's text.
func FuzzReadStream(f *testing.F) {
	for _, s := range []string{textStream, toolStream, twoDeltas + overloadedEvent} {
		f.Add(s)
		f.Add(s[:len(s)/2])
	}
	f.Fuzz(func(t *testing.T, stream string) {
		var log deltaLog
		resp, err := readStream(context.Background(), strings.NewReader(stream), log.add)
		if err == nil && (resp == nil || resp.Status != providers.StatusComplete) {
			t.Fatalf("no error but answer %+v", resp)
		}
		if resp != nil && resp.Text != log.text() {
			t.Fatalf("text %q, deltas %q", resp.Text, log.text())
		}
	})
}
