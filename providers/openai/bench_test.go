package openai

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stated-dev/stated/providers"
)

// chatBenchStream is a Chat Completions stream of n text deltas.
func chatBenchStream(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(deltaChunk(fmt.Sprintf(`{"content":"token %d "}`, i), "null"))
	}
	b.WriteString(deltaChunk(`{}`, `"stop"`) + chunkEvent("[]", cachedUsage) + doneEvent)
	return b.String()
}

// responsesBenchStream is a Responses stream of n text deltas.
func responsesBenchStream(n int) string {
	var b strings.Builder
	b.WriteString(respCreated)
	for i := range n {
		b.WriteString(respEvent(fmt.Sprintf(`{"type":"response.output_text.delta",`+
			`"sequence_number":%d,"item_id":"msg_1","output_index":0,"content_index":0,`+
			`"delta":"token %d ","logprobs":[]}`, i+2, i)))
	}
	b.WriteString(respCompleted(`{"input_tokens":10,"output_tokens":1000}`))
	return b.String()
}

func BenchmarkReadStream(b *testing.B) {
	stream := chatBenchStream(1000)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		if _, err := readStream(context.Background(), strings.NewReader(stream),
			func(d providers.Delta) {}, &openAIUsage); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadResponsesStream(b *testing.B) {
	stream := responsesBenchStream(1000)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		if _, err := readResponsesStream(context.Background(), strings.NewReader(stream),
			func(d providers.Delta) {}); err != nil {
			b.Fatal(err)
		}
	}
}
