package anthropic

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stated-dev/stated/providers"
)

func BenchmarkReadStream(b *testing.B) {
	var s strings.Builder
	s.WriteString(event("message_start", messageStart))
	s.WriteString(event("content_block_start", `{"type":"content_block_start","index":0,`+
		`"content_block":{"type":"text","text":""}}`))
	for i := range 1000 {
		s.WriteString(event("content_block_delta", fmt.Sprintf(`{"type":"content_block_delta",`+
			`"index":0,"delta":{"type":"text_delta","text":"token %d "}}`, i)))
	}
	s.WriteString(event("message_stop", `{"type":"message_stop"}`))
	stream := s.String()
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		if _, err := readStream(context.Background(), strings.NewReader(stream),
			func(providers.Delta) {}); err != nil {
			b.Fatal(err)
		}
	}
}
