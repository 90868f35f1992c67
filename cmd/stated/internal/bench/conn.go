package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stated-dev/stated/transport/wire"
)

// reportKind says what a connection's reader tells the run.
type reportKind int

const (
	reportAttached   reportKind = iota // the session frame arrived
	reportAnswered                     // the answer's event arrived
	reportRefused                      // an error frame about the pending turn or the open
	reportLost                         // the connection failed or the server closed it
	reportDialFailed                   // the connection could not be made
)

// report is what a connection's reader sends to the run, in the order it read.
type report struct {
	c    *conn
	kind reportKind
	at   time.Duration // when it was read, since the run's start
	// firstDelta is when the first delta of the answer was read, since the run's
	// start; 0 when the answer had none.
	firstDelta time.Duration
	// code is the error frame's code, the answer's error code when it is not
	// complete, or the reason the connection failed.
	code string
	err  error
}

// conn is one WebSocket connection to the server. Its reader goroutine is the
// only reader; the run is the only writer (control frames aside, which
// gorilla/websocket allows from any goroutine).
type conn struct {
	index int // among the run's connections, from 0
	ws    *websocket.Conn

	// sentAt is when the pending turn was written, since the run's start; set by
	// the writer before the write, read by the reader.
	sentAt atomic.Int64
	// closing is set before the run closes the connection on purpose, so that
	// the reader reports no loss.
	closing atomic.Bool
	done    chan struct{} // closed when the reader returns

	// Set by the reader; read by others only after done is closed or after a
	// report of them was received.
	sessionID string
	epoch     uint64
	lastSeq   uint64 // the highest seq of an ack or event read

	// Owned by the run.
	attached bool // the session frame arrived
	failed   bool // the open failed: the connection counts as a failure, once
	turn     int  // the turn awaiting its answer, 0 when none
	dead     bool // lost, paused or timed out: sends no more turns
}

// dialer makes the run's connections.
type dialer struct {
	ws      websocket.Dialer
	url     string
	header  http.Header
	sources Sources
	base    time.Time // the run's start, the zero of every report's time
}

// readBufferSize is small: the bench reads frames of an answer (deltas of a
// few words, one event); larger frames are read in pieces.
const readBufferSize = 2048

func newDialer(server, key string, timeout time.Duration, base time.Time) (*dialer, error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return nil, fmt.Errorf("%w: --server %q is not a ws:// or wss:// URL", ErrInvalid, server)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/ws"
	}
	sources := NewSources(u.Hostname(), 0)
	if h := sources.dialHost(u.Hostname()); h != u.Hostname() {
		u.Host = net.JoinHostPort(h, u.Port())
	}
	d := &dialer{url: u.String(), header: http.Header{}, sources: sources, base: base}
	if key != "" {
		d.header.Set("Authorization", "Bearer "+key)
	}
	d.ws = websocket.Dialer{
		Subprotocols:     []string{wire.Subprotocol},
		HandshakeTimeout: timeout,
		ReadBufferSize:   readBufferSize,
		WriteBufferPool:  &sync.Pool{},
	}
	return d, nil
}

// dial connects connection index; the caller starts its reader.
func (d *dialer) dial(ctx context.Context, index int) (*conn, error) {
	nd := &net.Dialer{LocalAddr: d.sources.Addr(index), Timeout: d.ws.HandshakeTimeout}
	wd := d.ws
	wd.NetDialContext = nd.DialContext
	ws, resp, err := wd.DialContext(ctx, d.url, d.header)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, dialError(err, resp)
	}
	return &conn{index: index, ws: ws, done: make(chan struct{})}, nil
}

// since is the time since the run's start.
func (d *dialer) since() time.Duration { return time.Since(d.base) }

// write sends one frame within timeout.
func (c *conn) write(frame any, timeout time.Duration) error {
	b, err := json.Marshal(frame)
	if err != nil {
		return err
	}
	c.ws.SetWriteDeadline(time.Now().Add(timeout))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// close closes the connection on purpose: a close frame, then the socket.
func (c *conn) close() {
	c.closing.Store(true)
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	c.ws.Close()
}

// frame is the part of a server frame the bench reads.
type frame struct {
	Type      string `json:"type"`
	Seq       uint64 `json:"seq"`
	SessionID string `json:"session_id"`
	Epoch     uint64 `json:"epoch"`
	Code      string `json:"code"`
	TurnID    string `json:"turn_id"`
	Event     *struct {
		Kind      string `json:"kind"`
		Status    string `json:"status"`
		ErrorCode string `json:"error_code"`
	} `json:"event"`
}

// deltaPrefix starts every delta frame the server writes ("type" is the first
// field of its frames); delta frames are most of what the bench reads, and this
// spares decoding them.
var deltaPrefix = []byte(`{"type":"delta"`)

// read is the connection's reader: it reads until the connection ends and
// sends a report for each thing the run waits for. attachTimeout bounds the
// wait for the session frame.
func (c *conn) read(d *dialer, reports chan<- report, attachTimeout time.Duration) {
	defer close(c.done)
	c.ws.SetReadDeadline(time.Now().Add(attachTimeout))
	attached := false
	var firstDelta time.Duration
	for {
		_, msg, err := c.ws.ReadMessage()
		now := d.since()
		if err != nil {
			if !c.closing.Load() {
				reports <- report{c: c, kind: reportLost, at: now, code: lossReason(err),
					err: err}
			}
			return
		}
		if bytes.HasPrefix(msg, deltaPrefix) {
			if firstDelta == 0 {
				firstDelta = now
			}
			continue
		}
		var f frame
		if err := json.Unmarshal(msg, &f); err != nil {
			reports <- report{c: c, kind: reportRefused, at: now, code: "malformed_frame",
				err: err}
			continue
		}
		switch f.Type {
		case wire.TypeSession:
			c.sessionID, c.epoch, c.lastSeq = f.SessionID, f.Epoch, f.Seq
			if !attached {
				attached = true
				c.ws.SetReadDeadline(time.Time{})
				reports <- report{c: c, kind: reportAttached, at: now}
			}
		case wire.TypeAck:
			c.lastSeq = max(c.lastSeq, f.Seq)
		case wire.TypeEvent:
			c.lastSeq = max(c.lastSeq, f.Seq)
			if f.Event == nil || f.Event.Kind != "assistant" {
				continue
			}
			r := report{c: c, kind: reportAnswered, at: now, firstDelta: firstDelta}
			if f.Event.Status != "complete" {
				r.code = "answer_" + f.Event.Status + ":" + f.Event.ErrorCode
			}
			firstDelta = 0
			reports <- r
		case wire.TypeError:
			firstDelta = 0
			reports <- report{c: c, kind: reportRefused, at: now, code: f.Code}
		}
	}
}
