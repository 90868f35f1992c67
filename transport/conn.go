package transport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/session"
	"github.com/stated-dev/stated/transport/wire"
)

// conn is one WebSocket connection. Its read loop runs on a goroutine of its own
// and handles frames one at a time; what the connection sends is queued, and
// written by a writer goroutine that runs only while the queue has something
// (outbound.go).
type conn struct {
	srv *Server
	ws  socket          // a WebSocket, or a connection forwarded over NATS (vconn.go)
	ctx context.Context // cancelled when the connection ends
	end context.CancelFunc

	// sess is the session the connection is attached to; only the read loop
	// touches it.
	sess *session.Session
	// tenant is who the connection acts for, from its handshake's credentials.
	tenant string
	// relay forwards the connection to the owner of its session on another node
	// (relay.go); only the read loop touches it.
	relay *relay

	// outMu guards the fields below, writers excepted.
	outMu       sync.Mutex
	queue       []outFrame
	queuedBytes int64  // bytes queued or being written, bounded by MaxQueuedBytes
	lastDelta   uint64 // the seq of the answer whose delta was queued last
	ping        bool   // a ping is due
	pinger      *time.Timer
	writing     bool // a writer goroutine runs
	closed      bool // the close is queued: nothing more is
	finished    bool // the close was written, or a write failed: nothing more is written
	closeCode   int
	closeReason string
	writers     sync.WaitGroup // the writer goroutine, while one runs
	// writeLoopFn is c.writeLoop, bound once: a go statement on a method value
	// would allocate its closure at every start of the writer.
	writeLoopFn func()

	// ended, if not nil, is called when the connection has ended.
	ended func()
}

func newConn(srv *Server, ws socket) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	return &conn{srv: srv, ws: ws, ctx: ctx, end: cancel}
}

// run serves a tracked connection until the client goes away or the server closes
// it, and then untracks it. It is the connection's goroutine, started directly
// with no closure or defer below it: an idle connection is parked in gorilla's
// read under readLoop and run, a chain that uses just under 2 KiB of stack, so
// a collection halves the 8 KiB that handling open grew to 4 KiB (the runtime
// halves a stack used below a quarter). Deeper frames there would keep 8 KiB
// per idle connection; BenchmarkIdleConnections shows it in stack-B/conn.
func (c *conn) run() {
	c.startPings()
	c.readLoop()

	c.stopRelay()
	if c.sess != nil {
		c.sess.Unsubscribe(c)
	}
	c.closeWith(websocket.CloseNormalClosure, "")
	c.writers.Wait()
	c.end()
	c.ws.Close()
	if c.ended != nil {
		c.ended()
	}
	c.srv.untrack(c)
}

// refuse closes a connection that will not be served with code and reason.
func (c *conn) refuse(code int, reason string) {
	c.closeWith(code, reason)
	c.writers.Wait()
	c.end()
	c.ws.Close()
}

// readLoop reads and serves the client's frames until the connection ends. It
// keeps its own frame small: an idle connection is parked in it, and the less
// stack the goroutine uses there, the more of it the runtime gives back.
func (c *conn) readLoop() {
	c.armReads()
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			return // gorilla has answered protocol errors and oversize frames
		}
		if !c.serveFrame(typ, data, time.Now()) {
			return
		}
	}
}

// armReads sets the read limit, the read deadline, and the handlers of pings and
// pongs, which push the deadline back like any frame.
func (c *conn) armReads() {
	cfg := &c.srv.cfg
	c.ws.SetReadLimit(cfg.ReadLimit)
	c.refreshRead()
	c.ws.SetPongHandler(func(string) error { c.refreshRead(); return nil })
	c.ws.SetPingHandler(func(data string) error {
		c.refreshRead()
		err := c.ws.WriteControl(websocket.PongMessage, []byte(data),
			time.Now().Add(cfg.WriteTimeout))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
}

func (c *conn) refreshRead() {
	c.ws.SetReadDeadline(time.Now().Add(c.srv.cfg.ReadTimeout))
}

// serveFrame serves one frame read at received, and reports whether the
// connection goes on.
func (c *conn) serveFrame(typ int, data []byte, received time.Time) bool {
	c.refreshRead()
	if typ != websocket.TextMessage {
		c.sendError("", wire.CodeBadFrame, "frames are JSON text messages")
		return true
	}
	f, err := wire.DecodeClientFrame(data)
	if err != nil {
		c.sendError("", wire.CodeBadFrame, err.Error())
		return true
	}
	if c.forwarded(&f, data) {
		return true
	}
	c.handle(&f, received)
	return !c.isClosed()
}

// handle serves one client frame.
func (c *conn) handle(f *wire.ClientFrame, received time.Time) {
	switch f.Type {
	case wire.TypeOpen:
		c.open(f)
	case wire.TypeResume:
		c.resume(f)
	case wire.TypeTurn:
		c.submit(f.TurnID, session.Input{
			Kind: session.KindUser, TurnID: f.TurnID, Text: f.Text, Received: received,
			Pin: f.Pin, ValueUSD: f.ValueUSD, Priority: f.Priority,
		})
	case wire.TypeToolResult:
		c.submit(f.TurnID, session.Input{
			Kind: session.KindToolResult, TurnID: f.TurnID, Text: f.Content,
			ToolCallID: f.ToolCallID, IsError: f.IsError, Received: received, Pin: f.Pin,
		})
	case wire.TypeRetry:
		if c.attached("") {
			if err := c.sess.Retry(c.ctx); err != nil {
				c.sendSessionError("", err)
			}
		}
	case wire.TypeCancel:
		if c.attached("") {
			c.sess.Cancel()
		}
	case wire.TypePing:
		c.send(&wire.ServerFrame{Type: wire.TypePong})
	case wire.TypePin, wire.TypeHistory, wire.TypePreset:
		c.handleSavings(f)
	case wire.TypeResumeTurns:
		if c.attached("") {
			if err := c.sess.ResumeTurns(c.ctx, "client"); err != nil {
				c.sendSessionError("", err)
			}
		}
	default:
		c.sendError("", wire.CodeUnknownType, fmt.Sprintf("unknown frame type %q", f.Type))
	}
}

func (c *conn) open(f *wire.ClientFrame) {
	st := session.Settings{
		Model: f.Model, System: f.System, MaxTokens: f.MaxTokens, Tools: toolsFromWire(f.Tools),
		FallbackModels: f.FallbackModels,
		Preset:         f.Preset, PresetVersion: f.PresetVersion, Context: contextFromWire(f.Context),
		Cost: costPolicyFromWire(f.CostPolicy),
	}
	s, err := c.srv.sessions.Open(c.ctx, c.tenant, st)
	if err != nil {
		c.sendSessionError("", err)
		return
	}
	c.attach(s, 1, 0)
}

func (c *conn) resume(f *wire.ClientFrame) {
	if f.SessionID == "" {
		c.sendError("", wire.CodeInvalid, "resume needs session_id")
		return
	}
	s, err := c.srv.sessions.Get(c.ctx, c.tenant, f.SessionID)
	if err != nil {
		if !c.relayTo(f, err) {
			c.sendSessionError("", err)
		}
		return
	}
	c.attach(s, f.Epoch, f.LastSeq)
}

// attach subscribes the connection to s, leaving the session it was attached to.
func (c *conn) attach(s *session.Session, epoch, lastSeq uint64) {
	if c.sess != nil {
		c.sess.Unsubscribe(c)
	}
	c.sess = s
	s.Subscribe(c, epoch, lastSeq)
}

func (c *conn) submit(turnID string, in session.Input) {
	if !c.attached(turnID) {
		return
	}
	if _, err := c.sess.Submit(c.ctx, c, in); err != nil {
		c.sendSessionError(turnID, err)
	}
}

func (c *conn) attached(turnID string) bool {
	if c.sess == nil {
		c.sendError(turnID, wire.CodeNotAttached, "open or resume a session first")
		return false
	}
	return true
}

// sendSessionError translates an error of the session layer into an error frame.
func (c *conn) sendSessionError(turnID string, err error) {
	code := codeOf(err)
	if code == wire.CodeInternal {
		c.srv.log.Error("turn failed", "err", err)
		c.sendError(turnID, code, "internal error; retry")
		return
	}
	c.sendError(turnID, code, err.Error())
}

func codeOf(err error) string {
	switch {
	case errors.Is(err, session.ErrNotFound):
		return wire.CodeSessionNotFound
	case errors.Is(err, session.ErrBusy):
		return wire.CodeBusy
	case errors.Is(err, session.ErrEmptyTurn):
		return wire.CodeEmptyTurn
	case errors.Is(err, session.ErrUnknownToolCall):
		return wire.CodeUnknownToolCall
	case errors.Is(err, session.ErrToolResultsPending):
		return wire.CodeToolResultsPending
	case errors.Is(err, session.ErrTurnIDConflict):
		return wire.CodeTurnIDConflict
	case errors.Is(err, session.ErrNothingToAnswer):
		return wire.CodeNothingToAnswer
	case errors.Is(err, session.ErrInvalid):
		return wire.CodeInvalid
	case errors.Is(err, session.ErrClosed):
		return wire.CodeShuttingDown
	case errors.Is(err, session.ErrOwnedElsewhere), errors.Is(err, session.ErrNotOwner):
		return wire.CodeOwnerUnavailable
	case errors.Is(err, session.ErrContextOverflow):
		return wire.CodeContextOverflow
	case errors.Is(err, session.ErrPresetNotFound):
		return wire.CodePresetNotFound
	case errors.Is(err, session.ErrNotPinnable):
		return wire.CodeNotPinnable
	case errors.Is(err, finops.ErrBudgetExceeded):
		return wire.CodeBudgetExceeded
	case errors.Is(err, session.ErrPaused):
		return wire.CodeSessionPaused
	default:
		return wire.CodeInternal
	}
}

func (c *conn) sendError(turnID, code, msg string) {
	c.send(&wire.ServerFrame{
		Type: wire.TypeError, TurnID: turnID, Code: code, Message: msg,
		Retry: wire.Retryable(code),
	})
}
