package transport

import (
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
)

// relayMsg builds a forwarded message: kind, number (0: none), and whether more
// pieces follow.
func relayMsg(kind string, seq uint64, more bool, data string) *nats.Msg {
	msg := nats.NewMsg("s")
	msg.Header.Set(hdrRelayKind, kind)
	if seq > 0 {
		msg.Header.Set(hdrRelaySeq, strconv.FormatUint(seq, 10))
	}
	if more {
		msg.Header.Set(hdrRelayMore, "1")
	}
	if kind == relayClose {
		msg.Header.Set(hdrRelayCode, "1001")
	}
	msg.Data = []byte(data)
	return msg
}

func TestRelayReceiver(t *testing.T) {
	tests := []struct {
		name    string
		msgs    []*nats.Msg
		frames  []string
		closed  int
		failing bool
	}{
		{"frames in order come out whole and heartbeats add nothing",
			[]*nats.Msg{relayMsg(relayFrame, 1, false, "a"), relayMsg(relayBeat, 0, false, ""),
				relayMsg(relayFrame, 2, false, "b")}, []string{"a", "b"}, 0, false},
		{"pieces of one frame are put back together",
			[]*nats.Msg{relayMsg(relayFrame, 1, true, "ab"), relayMsg(relayFrame, 2, true, "cd"),
				relayMsg(relayFrame, 3, false, "e")}, []string{"abcde"}, 0, false},
		{"a missing message is a gap",
			[]*nats.Msg{relayMsg(relayFrame, 1, false, "a"), relayMsg(relayFrame, 3, false, "c")},
			[]string{"a"}, 0, true},
		{"a repeated message is a gap",
			[]*nats.Msg{relayMsg(relayFrame, 1, false, "a"), relayMsg(relayFrame, 1, false, "a")},
			[]string{"a"}, 0, true},
		{"a message without a number is a gap",
			[]*nats.Msg{relayMsg(relayFrame, 0, false, "a")}, nil, 0, true},
		{"a close carries its code",
			[]*nats.Msg{relayMsg(relayFrame, 1, false, "a"), relayMsg(relayClose, 2, false, "bye")},
			[]string{"a"}, 1001, false},
		{"a frame over the limit is refused",
			[]*nats.Msg{relayMsg(relayFrame, 1, true, "0123456789"),
				relayMsg(relayFrame, 2, false, "0123456789")}, nil, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := relayReceiver{limit: 16}
			var frames []string
			var closed int
			var failed bool
			for _, m := range tt.msgs {
				data, c, err := r.take(m)
				if err != nil {
					failed = true
					break
				}
				if c != nil {
					closed = c.code
				}
				if data != nil {
					frames = append(frames, string(data))
				}
			}
			if failed != tt.failing || closed != tt.closed ||
				strconv.Quote(join(frames)) != strconv.Quote(join(tt.frames)) {
				t.Fatalf("frames %q, close %d, failed %t; want %q, %d, %t", frames, closed,
					failed, tt.frames, tt.closed, tt.failing)
			}
		})
	}
}

func join(ss []string) string {
	out := ""
	for _, s := range ss {
		out += s + "|"
	}
	return out
}
