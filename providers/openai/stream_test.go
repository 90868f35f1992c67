package openai

import (
	"context"
	"encoding/json"
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
		resp, err := readStream(context.Background(), r, log.add, &openAIUsage)
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

func TestUsageIsSplitIntoDisjointCategories(t *testing.T) {
	tests := []struct {
		name   string
		fields UsageFields
		usage  string
		want   providers.Usage
	}{
		{
			name:   "cached tokens are a part of the prompt tokens",
			fields: openAIUsage,
			usage: `{"prompt_tokens":2006,"completion_tokens":300,` +
				`"prompt_tokens_details":{"cached_tokens":1920}}`,
			want: providers.Usage{InputTokens: 86, CacheReadTokens: 1920, OutputTokens: 300},
		},
		{
			name:   "written tokens are a part of the prompt tokens too",
			fields: openAIUsage,
			usage: `{"prompt_tokens":5000,"completion_tokens":7,"prompt_tokens_details":` +
				`{"cached_tokens":1024,"cache_write_tokens":3840}}`,
			want: providers.Usage{InputTokens: 136, CacheWrite5mTokens: 3840,
				CacheReadTokens: 1024, OutputTokens: 7},
		},
		{
			name:   "cached tokens beyond the prompt are capped",
			fields: openAIUsage,
			usage: `{"prompt_tokens":10,"completion_tokens":3,` +
				`"prompt_tokens_details":{"cached_tokens":50,"cache_write_tokens":9}}`,
			want: providers.Usage{CacheReadTokens: 10, OutputTokens: 3},
		},
		{
			name:   "a server without cache write fields ignores them",
			fields: presets["vllm"].Usage,
			usage: `{"prompt_tokens":100,"completion_tokens":3,` +
				`"prompt_tokens_details":{"cached_tokens":64,"cache_write_tokens":36}}`,
			want: providers.Usage{InputTokens: 36, CacheReadTokens: 64, OutputTokens: 3},
		},
		{
			name:   "a server without details reports everything as input",
			fields: presets["ollama"].Usage,
			usage:  `{"prompt_tokens":26,"completion_tokens":5,"total_tokens":31}`,
			want:   providers.Usage{InputTokens: 26, OutputTokens: 5},
		},
		{
			name: "other field names",
			fields: UsageFields{Prompt: "input_tokens", Completion: "output_tokens",
				Cached: "input_tokens_details.cached_tokens"},
			usage: `{"input_tokens":40,"output_tokens":2,` +
				`"input_tokens_details":{"cached_tokens":32}}`,
			want: providers.Usage{InputTokens: 8, CacheReadTokens: 32, OutputTokens: 2},
		},
		{
			name:   "null and negative counts count as zero",
			fields: openAIUsage,
			usage:  `{"prompt_tokens":-4,"completion_tokens":null,"prompt_tokens_details":null}`,
			want:   providers.Usage{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &decoder{fields: &tc.fields}
			if err := d.takeUsage(json.RawMessage(tc.usage)); err != nil {
				t.Fatal(err)
			}
			if d.usage != tc.want || !d.reported {
				t.Fatalf("usage %+v, want %+v", d.usage, tc.want)
			}
		})
	}
}

// FuzzReadStream feeds the Chat Completions decoder arbitrary bytes, seeded with
// whole and partial streams: it must never panic, a clean end must give a
// complete answer, and the deltas must always add up to the answer's text.
func FuzzReadStream(f *testing.F) {
	for _, s := range []string{textStream, toolStream, twoDeltas + serverErrorChunk} {
		f.Add(s)
		f.Add(s[:len(s)/2])
	}
	f.Fuzz(func(t *testing.T, stream string) {
		var log deltaLog
		resp, err := readStream(context.Background(), strings.NewReader(stream), log.add,
			&openAIUsage)
		if err == nil && (resp == nil || resp.Status != providers.StatusComplete) {
			t.Fatalf("no error but answer %+v", resp)
		}
		if resp != nil && resp.Text != log.text() {
			t.Fatalf("text %q, deltas %q", resp.Text, log.text())
		}
	})
}
