package providers

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// sseCase is a stream and the events a reader must return for it.
type sseCase struct {
	name    string
	in      string
	want    []SSEEvent
	wantErr error // io.EOF for a clean end
}

var sseCases = []sseCase{
	{
		name: "an anthropic stream gives its events in order",
		in: "event: message_start\ndata: {\"type\":\"message_start\"}\n\n" +
			"event: ping\ndata: {\"type\": \"ping\"}\n\n" +
			"event: content_block_delta\ndata: {\"text\":\"héllo ✓\"}\n\n",
		want: []SSEEvent{
			{Event: "message_start", Data: `{"type":"message_start"}`},
			{Event: "ping", Data: `{"type": "ping"}`},
			{Event: "content_block_delta", Data: `{"text":"héllo ✓"}`},
		},
		wantErr: io.EOF,
	},
	{
		name:    "crlf line ends work like lf",
		in:      "event: a\r\ndata: 1\r\n\r\ndata: 2\r\n\r\n",
		want:    []SSEEvent{{Event: "a", Data: "1"}, {Data: "2"}},
		wantErr: io.EOF,
	},
	{
		name:    "lone cr line ends work like lf",
		in:      "event: a\rdata: 1\r\rdata: 2\r\r",
		want:    []SSEEvent{{Event: "a", Data: "1"}, {Data: "2"}},
		wantErr: io.EOF,
	},
	{
		name:    "mixed line ends in one stream",
		in:      "data: 1\r\n\rdata: 2\n\r\ndata: 3\r\r\n",
		want:    []SSEEvent{{Data: "1"}, {Data: "2"}, {Data: "3"}},
		wantErr: io.EOF,
	},
	{
		name:    "a data field without a space after the colon",
		in:      "data:[DONE]\n\n",
		want:    []SSEEvent{{Data: "[DONE]"}},
		wantErr: io.EOF,
	},
	{
		name:    "only one leading space is removed",
		in:      "data:  two spaces\n\n",
		want:    []SSEEvent{{Data: " two spaces"}},
		wantErr: io.EOF,
	},
	{
		name:    "several data lines are joined with newlines",
		in:      "data: a\ndata:\ndata: c\n\n",
		want:    []SSEEvent{{Data: "a\n\nc"}},
		wantErr: io.EOF,
	},
	{
		name:    "comments are ignored",
		in:      ": keep-alive\n:\ndata: x\n: inside\n\n",
		want:    []SSEEvent{{Data: "x"}},
		wantErr: io.EOF,
	},
	{
		name:    "an event without data is not dispatched and its name is dropped",
		in:      "event: lonely\n\ndata: y\n\n",
		want:    []SSEEvent{{Data: "y"}},
		wantErr: io.EOF,
	},
	{
		name:    "an empty data field still makes an event",
		in:      "data\n\n",
		want:    []SSEEvent{{Data: ""}},
		wantErr: io.EOF,
	},
	{
		name:    "the last event id carries over to later events",
		in:      "id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\n",
		want:    []SSEEvent{{ID: "7", Data: "a"}, {ID: "7", Data: "b"}, {ID: "", Data: "c"}},
		wantErr: io.EOF,
	},
	{
		name:    "an id with a nul is ignored",
		in:      "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
		want:    []SSEEvent{{ID: "1", Data: "a"}, {ID: "1", Data: "b"}},
		wantErr: io.EOF,
	},
	{
		name:    "unknown fields and retry are ignored",
		in:      "retry: 10\nfoo: bar\ndata: z\n\n",
		want:    []SSEEvent{{Data: "z"}},
		wantErr: io.EOF,
	},
	{
		name:    "a leading byte order mark is dropped",
		in:      "\xEF\xBB\xBFdata: bom\n\n",
		want:    []SSEEvent{{Data: "bom"}},
		wantErr: io.EOF,
	},
	{
		name:    "a stream that is only a byte order mark ends cleanly",
		in:      "\xEF\xBB\xBF",
		wantErr: io.EOF,
	},
	{
		name:    "an empty stream ends cleanly",
		in:      "",
		wantErr: io.EOF,
	},
	{
		name:    "a stream cut after a data line drops the event",
		in:      "data: a\n\ndata: b\n",
		want:    []SSEEvent{{Data: "a"}},
		wantErr: io.ErrUnexpectedEOF,
	},
	{
		name:    "a stream cut inside a line drops the event",
		in:      "data: a\n\ndata: [DO",
		want:    []SSEEvent{{Data: "a"}},
		wantErr: io.ErrUnexpectedEOF,
	},
	{
		name:    "a trailing comment without a line end is a cut",
		in:      "data: a\n\n: ping",
		want:    []SSEEvent{{Data: "a"}},
		wantErr: io.ErrUnexpectedEOF,
	},
	{
		name:    "several events in one line-end run",
		in:      "data: 1\n\ndata: 2\n\n\n\ndata: 3\n\n",
		want:    []SSEEvent{{Data: "1"}, {Data: "2"}, {Data: "3"}},
		wantErr: io.EOF,
	},
	{
		name:    "a colon inside the value is kept",
		in:      "data: {\"a\":\"b:c\"}\n\n",
		want:    []SSEEvent{{Data: `{"a":"b:c"}`}},
		wantErr: io.EOF,
	},
}

// sseResult is what reading a whole stream gave: its events and how it ended.
type sseResult struct {
	events []SSEEvent
	err    error
}

// readAllEvents reads events until the first error.
func readAllEvents(t testing.TB, r *SSEReader) sseResult {
	t.Helper()
	var res sseResult
	for i := 0; ; i++ {
		ev, err := r.Next()
		if err != nil {
			res.err = err
			return res
		}
		if i > 1<<20 {
			t.Fatalf("reader returned more than a million events")
		}
		res.events = append(res.events, ev)
	}
}

// sameEnd reports whether two end-of-stream errors are of the same kind.
func sameEnd(a, b error) bool {
	for _, kind := range []error{ErrLineTooLong, io.ErrUnexpectedEOF} {
		if errors.Is(a, kind) || errors.Is(b, kind) {
			return errors.Is(a, kind) && errors.Is(b, kind)
		}
	}
	return a == io.EOF && b == io.EOF
}

// checkResult fails the test if got is not want.
func checkResult(t testing.TB, label string, got, want sseResult) {
	t.Helper()
	if !reflect.DeepEqual(got.events, want.events) {
		t.Fatalf("%s: events\n got %q\nwant %q", label, got.events, want.events)
	}
	if !sameEnd(got.err, want.err) {
		t.Fatalf("%s: end %v, want %v", label, got.err, want.err)
	}
}

// chunkReader returns its input size bytes at a time.
type chunkReader struct {
	data []byte
	size int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(c.size, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// everyCut reads in through readers that cut it in every way the tests know:
// chunks of 1, 2, 3, ... bytes, two pieces split at every offset, one byte at a
// time, and data returned together with io.EOF.
func everyCut(t *testing.T, in []byte, maxLine int, want sseResult) {
	t.Helper()
	for size := 1; size <= len(in); size++ {
		got := readAllEvents(t, NewSSEReader(&chunkReader{data: in, size: size}, maxLine))
		checkResult(t, fmt.Sprintf("chunks of %d bytes", size), got, want)
	}
	for cut := 0; cut <= len(in); cut++ {
		r := io.MultiReader(bytes.NewReader(in[:cut]), bytes.NewReader(in[cut:]))
		got := readAllEvents(t, NewSSEReader(r, maxLine))
		checkResult(t, fmt.Sprintf("split at %d", cut), got, want)
	}
	got := readAllEvents(t, NewSSEReader(iotest.OneByteReader(bytes.NewReader(in)), maxLine))
	checkResult(t, "one byte at a time", got, want)
	got = readAllEvents(t, NewSSEReader(iotest.DataErrReader(bytes.NewReader(in)), maxLine))
	checkResult(t, "data with eof", got, want)
}

func TestSSEReaderGivesTheSameEventsWhateverTheCut(t *testing.T) {
	for _, tc := range sseCases {
		t.Run(tc.name, func(t *testing.T) {
			want := sseResult{events: tc.want, err: tc.wantErr}
			whole := readAllEvents(t, NewSSEReader(strings.NewReader(tc.in), 0))
			checkResult(t, "whole", whole, want)
			ref, refErr := referenceSSE(tc.in, DefaultSSEMaxLine)
			checkResult(t, "reference", sseResult{events: ref, err: refErr}, want)
			everyCut(t, []byte(tc.in), 0, want)
		})
	}
}

func TestSSEReaderReadsALineFarLongerThan64KiB(t *testing.T) {
	payload := strings.Repeat("0123456789abcdef", 200<<10/16)
	in := "event: big\ndata: " + payload + "\n\ndata: after\n\n"
	want := sseResult{
		events: []SSEEvent{{Event: "big", Data: payload}, {Data: "after"}},
		err:    io.EOF,
	}

	for _, size := range []int{1, 7, 4096, 65536, len(in)} {
		r := NewSSEReader(&chunkReader{data: []byte(in), size: size}, 0)
		checkResult(t, fmt.Sprintf("chunks of %d", size), readAllEvents(t, r), want)
	}
}

func TestSSEReaderRejectsALinePastTheLimit(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		maxLine int
		want    []SSEEvent
	}{
		{
			name:    "a terminated line one byte too long",
			in:      "data: ok\n\ndata: 12345\n\n",
			maxLine: 10,
			want:    []SSEEvent{{Data: "ok"}},
		},
		{
			name:    "an unterminated line too long is reported before the cut",
			in:      "data: ok\n\ndata: 123456789",
			maxLine: 10,
			want:    []SSEEvent{{Data: "ok"}},
		},
		{
			name:    "a comment line counts too",
			in:      ":" + strings.Repeat("x", 20) + "\ndata: never\n\n",
			maxLine: 10,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := sseResult{events: tc.want, err: ErrLineTooLong}
			everyCut(t, []byte(tc.in), tc.maxLine, want)
		})
	}
}

func TestSSEReaderAcceptsALineExactlyAtTheLimit(t *testing.T) {
	in := "data: 1234\r\n\r\n" // the line "data: 1234" is 10 bytes
	want := sseResult{events: []SSEEvent{{Data: "1234"}}, err: io.EOF}
	everyCut(t, []byte(in), 10, want)
}

func TestSSEReaderDefaultLimitIsEightMiB(t *testing.T) {
	at := "data: " + strings.Repeat("a", DefaultSSEMaxLine-len("data: "))
	res := readAllEvents(t, NewSSEReader(strings.NewReader(at+"\n\n"), 0))
	if res.err != io.EOF || len(res.events) != 1 || len(res.events[0].Data) != len(at)-6 {
		t.Fatalf("a line of exactly 8 MiB: %d events, end %v", len(res.events), res.err)
	}

	res = readAllEvents(t, NewSSEReader(strings.NewReader(at+"a\n\n"), -1))
	if !errors.Is(res.err, ErrLineTooLong) {
		t.Fatalf("a line of 8 MiB + 1: end %v, want ErrLineTooLong", res.err)
	}
}

func TestSSEReaderPassesOnReadErrorsAndKeepsThem(t *testing.T) {
	boom := errors.New("connection reset")
	r := NewSSEReader(io.MultiReader(
		strings.NewReader("data: a\n\ndata: b"),
		iotest.ErrReader(boom),
	), 0)

	ev, err := r.Next()
	if err != nil || ev.Data != "a" {
		t.Fatalf("first event %q, %v", ev.Data, err)
	}
	for range 2 {
		if _, err := r.Next(); !errors.Is(err, boom) {
			t.Fatalf("Next after a read error: %v, want %v", err, boom)
		}
	}
}

func TestSSEReaderGivesUpOnAReaderThatNeverProgresses(t *testing.T) {
	r := NewSSEReader(readerFunc(func([]byte) (int, error) { return 0, nil }), 0)
	if _, err := r.Next(); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("Next: %v, want io.ErrNoProgress", err)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// referenceSSE is a plain reading of the WHATWG rules on a whole stream, for
// comparison with the incremental reader.
func referenceSSE(in string, maxLine int) ([]SSEEvent, error) {
	in = strings.TrimPrefix(in, "\uFEFF")
	var events []SSEEvent
	var data strings.Builder
	var event, lastID string
	pending := false
	for {
		i := strings.IndexAny(in, "\r\n")
		if i < 0 {
			switch {
			case len(in) > maxLine:
				return events, ErrLineTooLong
			case len(in) > 0 || pending:
				return events, io.ErrUnexpectedEOF
			}
			return events, io.EOF
		}
		line := in[:i]
		if len(line) > maxLine {
			return events, ErrLineTooLong
		}
		if strings.HasPrefix(in[i:], "\r\n") {
			in = in[i+2:]
		} else {
			in = in[i+1:]
		}

		if line == "" {
			if data.Len() > 0 {
				d := data.String()
				events = append(events, SSEEvent{Event: event, Data: d[:len(d)-1], ID: lastID})
			}
			data.Reset()
			event, pending = "", false
			continue
		}
		if line[0] == ':' {
			continue
		}
		pending = true
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "data":
			data.WriteString(value + "\n")
		case "event":
			event = value
		case "id":
			if !strings.Contains(value, "\x00") {
				lastID = value
			}
		}
	}
}
