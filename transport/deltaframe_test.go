package transport

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/session"
)

// marshalledDelta is the delta frame as encoding/json writes it, the bytes the
// hand-written encoder must produce.
func marshalledDelta(t testing.TB, n session.Note) []byte {
	t.Helper()
	data, err := json.Marshal(frameOf(n))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func checkDeltaFrame(t testing.TB, n session.Note) {
	t.Helper()
	want := marshalledDelta(t, n)
	if got := deltaFrame(&n); !bytes.Equal(got, want) {
		t.Fatalf("delta frame of %+v:\n got %s\nwant %s", n, got, want)
	}
	// Appending after bytes already there leaves them alone.
	prefix := []byte("prefix")
	if got := appendDeltaFrame(prefix, &n); !bytes.Equal(got, append(prefix, want...)) {
		t.Fatalf("appended delta frame of %+v:\n got %s\nwant prefix%s", n, got, want)
	}
}

func textNote(seq uint64, off int, text string) session.Note {
	return session.Note{Kind: session.NoteDelta, Seq: seq, Offset: off,
		Delta: providers.Delta{Kind: providers.DeltaText, Text: text}}
}

func callNote(seq uint64, off, index int, id, name, args string) session.Note {
	return session.Note{Kind: session.NoteDelta, Seq: seq, Offset: off,
		Delta: providers.Delta{Kind: providers.DeltaToolCall, Index: index, ID: id,
			Name: name, Arguments: args}}
}

func TestDeltaFramesAreTheBytesJSONMarshalWrites(t *testing.T) {
	tests := []struct {
		name string
		note session.Note
	}{
		{"a plain text delta", textNote(3, 40, "The quick brown fox, ")},
		{"the first delta has no offset", textNote(3, 0, "Hello")},
		{"an empty text is left out", textNote(3, 12, "")},
		{"a zero seq is left out", textNote(0, 5, "x")},
		{"the largest seq and offset", textNote(math.MaxUint64, math.MaxInt, "x")},
		{"quotes and backslashes are escaped", textNote(1, 1, `say "hi" \ C:\path\`)},
		{"every control character is escaped",
			textNote(1, 1, string([]byte{0, 1, 7, 8, 9, 10, 11, 12, 13, 27, 31, 127}))},
		{"HTML characters are escaped", textNote(1, 1, "<script>a && b</script>")},
		{"non-ASCII text is written as it is", textNote(1, 1, "héllo, 世界 🙂 Ωμέγα")},
		{"line and paragraph separators are escaped", textNote(1, 1, "a\u2028b\u2029c")},
		{"invalid UTF-8 is replaced",
			textNote(1, 1, "a\xffb\xc3(c\xe2\x82d\xed\xa0\x80e\xf4\x90\x80\x80")},
		{"a cut multi-byte character at the end is replaced", textNote(1, 1, "end\xe4\xb8")},
		{"a delta of another kind is written as text",
			session.Note{Kind: session.NoteDelta, Seq: 2, Delta: providers.Delta{Text: "t"}}},
		{"the first piece of a tool call has its id and name",
			callNote(9, 0, 0, "toolu_01", "get_weather", `{"city": `)},
		{"a later piece of a tool call has arguments only", callNote(9, 10, 1, "", "", `"Paris"}`)},
		{"a tool call piece with nothing but its index", callNote(9, 0, 0, "", "", "")},
		{"a negative index is written as it is", callNote(9, 0, -1, "", "", "{}")},
		{"tool call text is escaped like text",
			callNote(9, 3, 2, "id\"<", "na\u2028me", "{\"a\":\"<\\n\xff\"}")},
		{"a tool call delta drops any text", session.Note{Kind: session.NoteDelta, Seq: 1,
			Delta: providers.Delta{Kind: providers.DeltaToolCall, Text: "dropped",
				Arguments: "{}"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkDeltaFrame(t, tt.note) })
	}
}

// deltaAlphabet is what random deltas are made of: plain ASCII, every byte that
// needs an escape, multi-byte characters, separators and broken UTF-8.
var deltaAlphabet = []string{
	"a", "Z", " ", "0", "{", "}", ":", ",", "\"", "\\", "/", "<", ">", "&", "'",
	"\x00", "\x01", "\b", "\t", "\n", "\v", "\f", "\r", "\x1b", "\x1f", "\x7f",
	"é", "ß", "世", "界", "🙂", "\u2028", "\u2029", "\ufffd", "\u00a0",
	"\xff", "\xc3", "\xe2\x82", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x80",
}

func randomDeltaText(r *rand.Rand) string {
	var b strings.Builder
	for range r.IntN(40) {
		b.WriteString(deltaAlphabet[r.IntN(len(deltaAlphabet))])
	}
	return b.String()
}

func TestRandomDeltaFramesAreTheBytesJSONMarshalWrites(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 2026))
	for range 20000 {
		seq := r.Uint64N(3) * r.Uint64()
		off := r.IntN(3) * r.IntN(1<<20)
		var n session.Note
		if r.IntN(3) == 0 {
			n = callNote(seq, off, r.IntN(4), randomDeltaText(r), randomDeltaText(r),
				randomDeltaText(r))
		} else {
			n = textNote(seq, off, randomDeltaText(r))
		}
		checkDeltaFrame(t, n)
	}
}

func FuzzDeltaFrame(f *testing.F) {
	f.Add(uint64(1), 0, false, 0, "Hello", "", "")
	f.Add(uint64(7), 12, true, 1, "toolu_1", "get_weather", `{"city":"<Paris>"}`)
	f.Add(uint64(0), -3, false, 0, "a\xffb\u2028\x00", "", "")
	f.Fuzz(func(t *testing.T, seq uint64, off int, call bool, index int, a, b, c string) {
		if call {
			checkDeltaFrame(t, callNote(seq, off, index, a, b, c))
			return
		}
		checkDeltaFrame(t, textNote(seq, off, a+b+c))
	})
}

func TestADeltaFrameCostsOneAllocation(t *testing.T) {
	tests := []struct {
		name string
		note session.Note
	}{
		{"a text delta with a few escapes",
			textNote(3, 40, "The quick brown fox, \"quoted\" <tag> \u2028 \xff")},
		{"a text delta with the largest numbers",
			textNote(math.MaxUint64, math.MaxInt, "The quick brown fox, ")},
		{"a tool call delta with the largest numbers",
			callNote(math.MaxUint64, math.MaxInt, math.MinInt, "toolu_01", "get_weather",
				`{"city": "Paris"}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := testing.AllocsPerRun(100, func() { deltaFrame(&tt.note) })
			if got != 1 {
				t.Fatalf("%v allocations per delta frame, want 1", got)
			}
		})
	}
}

func TestDeliveringADeltaCostsOneAllocation(t *testing.T) {
	c := queueOnly(Config{MaxQueuedFrames: 1 << 20})
	n := textNote(3, 40, "The quick brown fox, ")
	if got := testing.AllocsPerRun(1000, func() { c.Deliver(n) }); got != 1 {
		t.Fatalf("%v allocations per delta delivered, want 1 (its frame)", got)
	}
	if f := c.queue[len(c.queue)-1]; !bytes.Equal(f.data, marshalledDelta(t, n)) {
		t.Fatalf("queued %s, want the delta frame", f.data)
	}
}
