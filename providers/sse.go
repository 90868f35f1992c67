package providers

import (
	"bytes"
	"fmt"
	"io"
	"time"
)

// DefaultSSEMaxLine is the longest SSE line, in bytes, that a reader accepts when
// NewSSEReader is given no limit.
const DefaultSSEMaxLine = 8 << 20

// maxSSELineCap bounds any limit a caller passes, so buffer sizes cannot overflow.
const maxSSELineCap = 1 << 30

// sseStartBuffer is the reader's first buffer size; it doubles while a line needs more.
const sseStartBuffer = 4 << 10

// sseMaxEmptyReads is how many reads in a row may return nothing before the reader
// gives up with io.ErrNoProgress instead of spinning.
const sseMaxEmptyReads = 100

// sseMaxNames bounds how many distinct event names a reader keeps interned.
const sseMaxNames = 64

// sseKeepData is the data buffer capacity a reader keeps between events; a larger
// buffer, grown for one big event, is released after that event.
const sseKeepData = 1 << 20

// utf8BOM is the byte order mark a stream may start with; it is not part of a line.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// SSEEvent is one dispatched event of a server-sent event stream.
type SSEEvent struct {
	// Event is the value of the event's last `event:` field; empty when it had none
	// (browsers then report the type "message").
	Event string
	// Data is the values of the event's `data:` fields joined by "\n". It may be
	// empty: a `data:` field with no value still makes an event.
	Data string
	// ID is the last event ID the stream set at or before this event. As in
	// browsers it carries over to later events until another `id:` field changes it.
	ID string
}

// SSEReader reads server-sent events from a byte stream, following the WHATWG
// event-stream rules: lines end in LF, CRLF or CR; `data:`, `event:` and `id:`
// fields take their value after the colon and one optional space; lines starting
// with a colon are comments; an event is dispatched at a blank line, and only if it
// has data. Bytes pass through unchanged (invalid UTF-8 is not replaced).
//
// The events it returns do not depend on how the underlying reader cuts the
// stream. It is not safe for concurrent use.
type SSEReader struct {
	src     io.Reader
	maxLine int

	buf     []byte // read buffer; unread bytes are buf[start:end]
	start   int
	end     int
	scanned int  // buf[start:scanned] is known to hold no line end
	eof     bool // src has returned io.EOF
	skipLF  bool // the last line ended in a CR at the end of the buffer
	bomDone bool // a leading byte order mark has been looked for

	data    []byte // data lines of the event being read, each followed by '\n'
	event   []byte // event name of the event being read
	pending bool   // a field line arrived since the last blank line
	lastID  string
	names   map[string]string // interned event names, so a repeated name costs nothing
	readAt  time.Time         // when the last Read of src that returned data returned

	err error // sticky: once set, every Next returns it
}

// NewSSEReader returns a reader of the events in r. maxLine is the longest line
// accepted, in bytes without its line end; maxLine <= 0 means DefaultSSEMaxLine.
func NewSSEReader(r io.Reader, maxLine int) *SSEReader {
	if maxLine <= 0 {
		maxLine = DefaultSSEMaxLine
	}
	return &SSEReader{src: r, maxLine: min(maxLine, maxSSELineCap)}
}

// Next returns the next event. It returns io.EOF when the stream ends cleanly (not
// inside an event or a line), an error matching io.ErrUnexpectedEOF when it ends
// inside one (the unfinished event is dropped), an error matching ErrLineTooLong
// when a line passes the limit, and the underlying reader's error wrapped. After an
// error every call returns the same error.
func (r *SSEReader) Next() (SSEEvent, error) {
	if r.err != nil {
		return SSEEvent{}, r.err
	}
	for {
		line, err := r.nextLine()
		if err != nil {
			r.err = err
			return SSEEvent{}, err
		}
		if len(line) == 0 {
			if ev, ok := r.dispatch(); ok {
				return ev, nil
			}
			continue
		}
		r.field(line)
	}
}

// LastRead returns when the last Read of the underlying stream that returned data
// returned: for the event Next just returned, when the bytes that completed it
// were read. It is the zero time before any data is read.
func (r *SSEReader) LastRead() time.Time { return r.readAt }

// nextLine returns the next line without its line end. The line aliases the read
// buffer and is valid until the next call.
func (r *SSEReader) nextLine() ([]byte, error) {
	for {
		if !r.bomDone && !r.skipBOM() {
			if err := r.fill(); err != nil {
				return nil, err
			}
			continue
		}
		if r.skipLF && r.start < r.end {
			r.skipLF = false
			if r.buf[r.start] == '\n' {
				r.start++
				r.scanned = max(r.scanned, r.start)
			}
		}
		if line, ok := r.cutLine(); ok {
			if len(line) > r.maxLine {
				return nil, r.tooLong()
			}
			return line, nil
		}
		if r.end-r.start > r.maxLine {
			return nil, r.tooLong()
		}
		if r.eof {
			return nil, r.endOfStream()
		}
		if err := r.fill(); err != nil {
			return nil, err
		}
	}
}

// skipBOM drops a byte order mark at the start of the stream. It reports false
// when it needs more bytes to decide.
func (r *SSEReader) skipBOM() bool {
	avail := r.buf[r.start:r.end]
	n := min(len(avail), len(utf8BOM))
	switch {
	case !bytes.Equal(avail[:n], utf8BOM[:n]) || (r.eof && n < len(utf8BOM)):
	case n == len(utf8BOM):
		r.start += n
		r.scanned = r.start
	default:
		return false
	}
	r.bomDone = true
	return true
}

// cutLine takes the next complete line off the buffer, if there is one.
func (r *SSEReader) cutLine() ([]byte, bool) {
	i := indexLineEnd(r.buf[r.scanned:r.end])
	if i < 0 {
		r.scanned = r.end
		return nil, false
	}
	i += r.scanned
	line := r.buf[r.start:i]
	next := i + 1
	if r.buf[i] == '\r' {
		switch {
		case next < r.end && r.buf[next] == '\n':
			next++
		case next == r.end:
			// The LF of a CRLF may come with the next read.
			r.skipLF = true
		}
	}
	r.start, r.scanned = next, next
	return line, true
}

// indexLineEnd returns the index of the first CR or LF in b, or -1.
func indexLineEnd(b []byte) int {
	lf := bytes.IndexByte(b, '\n')
	search := b
	if lf >= 0 {
		search = b[:lf]
	}
	if cr := bytes.IndexByte(search, '\r'); cr >= 0 {
		return cr
	}
	return lf
}

// fill reads more bytes into the buffer, first moving the unread part to its front
// and growing it when a line fills it.
func (r *SSEReader) fill() error {
	if r.start > 0 {
		n := copy(r.buf, r.buf[r.start:r.end])
		r.scanned -= r.start
		r.start, r.end = 0, n
	}
	if r.end == len(r.buf) {
		r.grow()
	}
	for range sseMaxEmptyReads {
		n, err := r.src.Read(r.buf[r.end:])
		r.end += n
		if n > 0 {
			r.readAt = time.Now()
		}
		if err == io.EOF {
			r.eof = true
			return nil
		}
		if err != nil {
			return fmt.Errorf("providers: sse read: %w", err)
		}
		if n > 0 {
			return nil
		}
	}
	return fmt.Errorf("providers: sse read: %w", io.ErrNoProgress)
}

// grow doubles the buffer, up to one byte more than the longest line allowed: that
// is enough to see that a line is too long.
func (r *SSEReader) grow() {
	size := sseStartBuffer
	if len(r.buf) > 0 {
		size = 2 * len(r.buf)
	}
	size = min(size, r.maxLine+1)
	buf := make([]byte, size)
	copy(buf, r.buf[:r.end])
	r.buf = buf
}

// field applies one non-blank line to the event being read.
func (r *SSEReader) field(line []byte) {
	if line[0] == ':' {
		return
	}
	r.pending = true
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(name) {
	case "data":
		r.data = append(r.data, value...)
		r.data = append(r.data, '\n')
	case "event":
		r.event = append(r.event[:0], value...)
	case "id":
		// An id with a NUL is ignored, as browsers do.
		if bytes.IndexByte(value, 0) < 0 && string(value) != r.lastID {
			r.lastID = string(value)
		}
	}
}

// dispatch ends the event being read at a blank line. It reports false when the
// event had no data field, which per the standard makes no event.
func (r *SSEReader) dispatch() (SSEEvent, bool) {
	r.pending = false
	if len(r.data) == 0 {
		r.event = r.event[:0]
		return SSEEvent{}, false
	}
	ev := SSEEvent{
		Event: r.intern(r.event),
		Data:  string(r.data[:len(r.data)-1]),
		ID:    r.lastID,
	}
	r.event = r.event[:0]
	r.data = r.data[:0]
	if cap(r.data) > sseKeepData {
		r.data = nil
	}
	return ev, true
}

// intern returns name as a string, reusing the string of an earlier event with the
// same name so that the usual handful of names allocate once per stream.
func (r *SSEReader) intern(name []byte) string {
	if len(name) == 0 {
		return ""
	}
	if s, ok := r.names[string(name)]; ok {
		return s
	}
	s := string(name)
	if r.names == nil {
		r.names = make(map[string]string)
	}
	if len(r.names) < sseMaxNames {
		r.names[s] = s
	}
	return s
}

// endOfStream is the error for the end of the underlying stream: io.EOF between
// events, io.ErrUnexpectedEOF wrapped inside a line or an event.
func (r *SSEReader) endOfStream() error {
	if r.end > r.start || r.pending {
		return fmt.Errorf("providers: sse stream ended inside an event: %w", io.ErrUnexpectedEOF)
	}
	return io.EOF
}

func (r *SSEReader) tooLong() error {
	return fmt.Errorf("%w: limit is %d bytes", ErrLineTooLong, r.maxLine)
}
