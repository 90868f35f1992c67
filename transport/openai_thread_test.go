package transport

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/session"
)

func exchanges(turns int) *thread {
	t := &thread{settings: session.Settings{Model: "gpt-4.1", System: "Be brief.",
		MaxTokens: 1024}}
	for i := 0; i < turns; i++ {
		t.items = append(t.items,
			session.Item{Kind: session.KindUser, Text: fmt.Sprintf("question %d %s", i,
				strings.Repeat("words ", 40))},
			session.Item{Kind: session.KindAssistant, Text: strings.Repeat("answer ", 80)})
	}
	return t
}

func TestHistoryKeysNameContentOnly(t *testing.T) {
	base := exchanges(3)
	key := base.chainKeys()[len(base.items)]
	for _, tc := range []struct {
		name   string
		change func(*thread)
		same   bool
	}{
		{"the same content with other turn IDs", func(t *thread) { t.items[0].TurnID = "x" },
			true},
		{"an edited turn", func(t *thread) { t.items[2].Text += "!" }, false},
		{"an answer with a tool call", func(t *thread) {
			t.items[1].ToolCalls = []providers.ToolCall{{ID: "c", Name: "f"}}
		}, false},
		{"another system prompt", func(t *thread) { t.settings.System = "Be long." }, false},
		{"another model", func(t *thread) { t.settings.Model = "gpt-4o" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := exchanges(3)
			tc.change(c)
			if got := c.chainKeys()[len(c.items)]; (got == key) != tc.same {
				t.Fatalf("key equal: %v, want %v", got == key, tc.same)
			}
		})
	}
}

// BenchmarkHistoryKeys measures the history keys of a stateless request that
// carries 50 exchanges: the work the server does to find the request's session.
func BenchmarkHistoryKeys(b *testing.B) {
	t := exchanges(50)
	b.ReportAllocs()
	for b.Loop() {
		t.chainKeys()
	}
}
