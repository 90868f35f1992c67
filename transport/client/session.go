package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stated-dev/stated/transport/wire"
)

// Session is one conversation on a server. Its methods must not be called
// concurrently: a session runs one turn at a time, as the server does.
type Session struct {
	cfg Config

	id      string
	epoch   uint64
	lastSeq uint64 // the last durable seq received
	history []wire.Event
	// delivered is how many bytes of the answer in flight's text the caller has
	// been given, so a resumed stream repeats nothing.
	deliveredSeq uint64
	delivered    int

	conn *connection
	// backlog holds the catch-up frames read while reconnecting, already recorded,
	// for the turn in progress to see.
	backlog []*wire.ServerFrame
	server  int // index in cfg.Servers of the current or next server
	stats   Stats
	closed  bool

	// model and maxTokens are the session's, from the server's session frame.
	model     string
	maxTokens int
}

// connection is one WebSocket and the goroutine that reads it.
type connection struct {
	ws     *websocket.Conn
	frames chan *wire.ServerFrame // closed when the connection ends
	err    error                  // why it ended; read after frames is closed
	mu     sync.Mutex             // guards writes
	// silence is how long the server may send nothing, not even a ping, before
	// the connection counts as lost.
	silence time.Duration
}

// Open connects and opens a new session, trying the servers in turn for up to
// Config.ReconnectFor. If a connection drops after the server opened the session but
// before it said so, the retry opens another one and the first stays empty.
func Open(ctx context.Context, cfg Config, st Settings) (*Session, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Session{cfg: cfg, server: rand.IntN(len(cfg.Servers))}
	open := &wire.ClientFrame{Type: wire.TypeOpen, Model: st.Model, System: st.System,
		Tools: st.Tools, MaxTokens: st.MaxTokens, Preset: st.Preset,
		PresetVersion: st.PresetVersion}
	if err := s.retry(ctx, func() *wire.ClientFrame { return open }); err != nil {
		return nil, err
	}
	s.backlog = nil
	return s, nil
}

// Resume attaches to an existing session. Events after lastSeq are fetched and
// kept in History; a wrong epoch yields the whole log.
func Resume(ctx context.Context, cfg Config, id string, epoch, lastSeq uint64) (*Session, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Session{cfg: cfg, id: id, epoch: epoch, lastSeq: lastSeq,
		server: rand.IntN(len(cfg.Servers))}
	if err := s.reconnect(ctx); err != nil {
		return nil, err
	}
	s.backlog = nil
	return s, nil
}

// ID returns the session's ID.
func (s *Session) ID() string { return s.id }

// Model returns the session's model and MaxTokens its max_tokens, as the server
// said when the session was opened or resumed.
func (s *Session) Model() string { return s.model }

// MaxTokens returns the session's max_tokens; see Model.
func (s *Session) MaxTokens() int { return s.maxTokens }

// Epoch returns the epoch of the session's log.
func (s *Session) Epoch() uint64 { return s.epoch }

// LastSeq returns the seq of the last durable event received.
func (s *Session) LastSeq() uint64 { return s.lastSeq }

// History returns the durable events received, in seq order.
func (s *Session) History() []wire.Event { return s.history }

// Stats returns what the session did on the wire so far.
func (s *Session) Stats() Stats { return s.stats }

// Close closes the connection. The session stays on the server.
func (s *Session) Close() error {
	s.closed = true
	if s.conn == nil {
		return nil
	}
	c := s.conn
	s.conn = nil
	c.mu.Lock()
	c.ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
		time.Now().Add(time.Second))
	c.mu.Unlock()
	return c.ws.Close()
}

// connect dials the next server, sends first (an open or resume frame) and waits
// for the session frame that answers it, recording what follows until then.
func (s *Session) connect(ctx context.Context, first *wire.ClientFrame) error {
	url := s.cfg.Servers[s.server%len(s.cfg.Servers)]
	dctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	d := websocket.Dialer{
		Subprotocols: []string{wire.Subprotocol}, HandshakeTimeout: s.cfg.DialTimeout,
		ReadBufferSize: 4096, WriteBufferSize: 4096,
	}
	ws, resp, err := d.DialContext(dctx, url, s.cfg.Header)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		s.server++
		return fmt.Errorf("client: dial %s: %w", url, err)
	}
	ws.SetReadLimit(s.cfg.ReadLimit)
	c := &connection{ws: ws, frames: make(chan *wire.ServerFrame, 256),
		silence: s.cfg.ReadTimeout}
	go c.readLoop()
	s.conn = c
	s.backlog = nil
	if err := s.send(first); err != nil {
		return err
	}
	for {
		f, err := s.next(ctx)
		if err != nil {
			return err
		}
		if f.Type == wire.TypeError {
			s.dropConn()
			return &ServerError{Code: f.Code, Message: f.Message, Retry: f.Retry}
		}
		if f.Type == wire.TypeSession {
			s.onSession(f)
			return s.catchUp(ctx, f.Missed)
		}
	}
}

// catchUp reads the missed events that follow a session frame, so that History is
// complete when Open or Resume returns.
func (s *Session) catchUp(ctx context.Context, missed int) error {
	for i := 0; i < missed; {
		f, err := s.read(ctx)
		if err != nil {
			return err
		}
		if f.Type == wire.TypeEvent {
			i++
		}
		s.backlog = append(s.backlog, f)
	}
	return nil
}

func (c *connection) readLoop() {
	defer close(c.frames)
	refresh := func() { c.ws.SetReadDeadline(time.Now().Add(c.silence)) }
	c.ws.SetPingHandler(func(data string) error {
		refresh()
		err := c.ws.WriteControl(websocket.PongMessage, []byte(data),
			time.Now().Add(time.Second))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	for {
		refresh()
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			c.err = err
			return
		}
		f := new(wire.ServerFrame)
		if err := json.Unmarshal(data, f); err != nil {
			c.err = fmt.Errorf("client: bad frame from server: %w", err)
			return
		}
		c.frames <- f
	}
}

// errConnLost is returned by next when the connection ended; callers reconnect.
var errConnLost = errors.New("client: connection lost")

// next returns the next frame of the current connection, recording durable events
// as it goes.
func (s *Session) next(ctx context.Context) (*wire.ServerFrame, error) {
	if len(s.backlog) > 0 {
		f := s.backlog[0]
		s.backlog = s.backlog[1:]
		return f, nil
	}
	return s.read(ctx)
}

// read returns the next frame from the connection, recording durable events.
func (s *Session) read(ctx context.Context) (*wire.ServerFrame, error) {
	if s.conn == nil {
		return nil, errConnLost
	}
	select {
	case f, ok := <-s.conn.frames:
		if !ok {
			// The node went away (or closed the connection to send the client
			// elsewhere): the next attempt goes to the next server.
			s.server++
			s.dropConn()
			return nil, errConnLost
		}
		s.record(f)
		return f, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// record keeps the session's position and history up to date with a frame.
func (s *Session) record(f *wire.ServerFrame) {
	switch f.Type {
	case wire.TypeEvent:
		if f.Event != nil && f.Seq == s.lastSeq+1 {
			s.lastSeq = f.Seq
			s.history = append(s.history, *f.Event)
		}
	}
}

func (s *Session) onSession(f *wire.ServerFrame) {
	s.id, s.epoch = f.SessionID, f.Epoch
	s.model, s.maxTokens = f.Model, f.MaxTokens
	if f.Snapshot {
		s.lastSeq = 0
		s.history = nil
	}
}

func (s *Session) send(f *wire.ClientFrame) error {
	if s.conn == nil {
		return errConnLost
	}
	data, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("client: encode frame: %w", err)
	}
	c := s.conn
	c.mu.Lock()
	c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	err = c.ws.WriteMessage(websocket.TextMessage, data)
	c.mu.Unlock()
	if err != nil {
		s.dropConn()
		return errConnLost
	}
	s.stats.BytesSent += int64(len(data))
	s.stats.FramesSent++
	return nil
}

func (s *Session) dropConn() {
	if s.conn != nil {
		s.conn.ws.Close()
		s.conn = nil
	}
}

// reconnect connects to a server and resumes the session from lastSeq, trying the
// servers in turn with backoff for up to ReconnectFor.
func (s *Session) reconnect(ctx context.Context) error {
	if s.closed {
		return ErrClosed
	}
	return s.retry(ctx, func() *wire.ClientFrame {
		return &wire.ClientFrame{Type: wire.TypeResume, SessionID: s.id, Epoch: s.epoch,
			LastSeq: s.lastSeq}
	})
}

// retry connects with the frame first returns, trying the servers in turn with
// backoff for up to ReconnectFor. A server error that a retry cannot help ends it.
func (s *Session) retry(ctx context.Context, first func() *wire.ClientFrame) error {
	deadline := time.Now().Add(s.cfg.ReconnectFor)
	backoff := 50 * time.Millisecond
	for {
		err := s.connect(ctx, first())
		if err == nil {
			return nil
		}
		var se *ServerError
		if errors.As(err, &se) && !se.Retry {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %v", ErrUnreachable, err)
		}
		s.cfg.Logger.Debug("reconnecting", "session", s.id, "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(backoff*2, 2*time.Second)
		s.stats.Reconnects++
	}
}
