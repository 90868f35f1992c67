package transport

import (
	"strconv"
	"unicode/utf8"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/session"
)

// The delta frame is the one frame a connection sends for every streamed chunk
// of an answer, so it is encoded by hand: straight from the note, without the
// reflection of encoding/json and without building a wire.ServerFrame first. The
// bytes are exactly those json.Marshal(frameOf(n)) produces (field order,
// omitted zero fields, and the same string escaping: HTML characters, control
// characters, U+2028 and U+2029 escaped, invalid UTF-8 replaced by U+FFFD);
// deltaframe_test.go holds the two together.

// deltaFrame returns the encoded delta frame of n, a NoteDelta, in a slice of
// its own.
func deltaFrame(n *session.Note) []byte {
	d := &n.Delta
	size := deltaFrameFixed + len(d.Text)
	if d.Kind == providers.DeltaToolCall {
		size = callFrameFixed + len(d.ID) + len(d.Name) + len(d.Arguments)
	}
	return appendDeltaFrame(make([]byte, 0, size+size/8), n)
}

// deltaFrameFixed and callFrameFixed bound what a text delta frame and a tool
// call delta frame hold besides their strings' bytes (keys, punctuation, numbers
// of up to 20 digits), so that a frame whose strings need few escapes is
// encoded in one allocation.
const (
	deltaFrameFixed = 96
	callFrameFixed  = 176
)

// appendDeltaFrame appends the delta frame of n to dst and returns the
// extended slice.
func appendDeltaFrame(dst []byte, n *session.Note) []byte {
	dst = append(dst, `{"type":"delta"`...)
	if n.Seq != 0 {
		dst = append(dst, `,"seq":`...)
		dst = strconv.AppendUint(dst, n.Seq, 10)
	}
	if n.Offset != 0 {
		dst = append(dst, `,"offset":`...)
		dst = strconv.AppendInt(dst, int64(n.Offset), 10)
	}
	d := &n.Delta
	if d.Kind != providers.DeltaToolCall {
		if d.Text != "" {
			dst = append(dst, `,"text":`...)
			dst = appendJSONString(dst, d.Text)
		}
		return append(dst, '}')
	}
	dst = append(dst, `,"tool_call":{"index":`...)
	dst = strconv.AppendInt(dst, int64(d.Index), 10)
	for _, f := range [...]struct{ key, val string }{
		{`,"id":`, d.ID}, {`,"name":`, d.Name}, {`,"arguments":`, d.Arguments},
	} {
		if f.val != "" {
			dst = append(dst, f.key...)
			dst = appendJSONString(dst, f.val)
		}
	}
	return append(dst, '}', '}')
}

// jsonHex is the digits of encoding/json's \u escapes.
const jsonHex = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaped as encoding/json escapes
// it with HTML escaping on (json.Marshal's default).
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if jsonPlain(b) {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = appendJSONEscape(dst, b)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', jsonHex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// jsonPlain reports whether the ASCII byte b stands for itself in a JSON
// string written with HTML escaping.
func jsonPlain(b byte) bool {
	return b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&'
}

// appendJSONEscape appends the escape of the ASCII byte b.
func appendJSONEscape(dst []byte, b byte) []byte {
	switch b {
	case '\\', '"':
		return append(dst, '\\', b)
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	return append(dst, '\\', 'u', '0', '0', jsonHex[b>>4], jsonHex[b&0xf])
}
