package transport

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// maxQueuedCreates bounds the response.create events waiting on one socket while
// another response runs; a client that queues more is closed with 1008.
const maxQueuedCreates = 16

// responsesSocket is one WebSocket of the Responses API's WebSocket mode. Its read
// loop takes response.create events and queues them; one worker runs them one at
// a time, in order, and is the socket's only writer of data messages.
//
// Where OpenAI keeps a socket's chain of responses in the socket's memory, here
// every response is placed in a session and its ID recorded durably, so a chain
// goes on over a new socket, after a restart, with previous_response_id.
type responsesSocket struct {
	api    *openaiAPI
	ws     *websocket.Conn
	tenant string
	ctx    context.Context // cancelled when the socket ends
	end    context.CancelFunc
	jobs   chan []byte

	// deadMu guards dead: a write failed, so later writes are skipped.
	deadMu sync.Mutex
	dead   bool
}

var responsesUpgrader = websocket.Upgrader{
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
	WriteBufferPool: &sync.Pool{},
}

// serveResponsesSocket upgrades GET /v1/responses to the WebSocket mode.
func (a *openaiAPI) serveResponsesSocket(w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Type: typeInvalidRequest,
			Message: "GET /v1/responses takes a WebSocket upgrade (the WebSocket mode)"})
		return
	}
	tenant, aerr := a.tenant(r, true)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	up := responsesUpgrader
	up.CheckOrigin = a.srv.checkOrigin
	up.HandshakeTimeout = 10 * time.Second
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered the client
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &responsesSocket{api: a, ws: ws, tenant: tenant, ctx: ctx, end: cancel,
		jobs: make(chan []byte, maxQueuedCreates)}
	if !a.trackSocket(s) {
		s.goingAway()
		return
	}
	defer a.untrackSocket(s)
	s.run()
}

func (a *openaiAPI) trackSocket(s *responsesSocket) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.shut {
		return false
	}
	a.sockets[s] = struct{}{}
	a.wg.Add(1)
	return true
}

func (a *openaiAPI) untrackSocket(s *responsesSocket) {
	a.mu.Lock()
	delete(a.sockets, s)
	a.mu.Unlock()
	a.wg.Done()
}

// run serves the socket until the client goes away or the server closes it.
func (s *responsesSocket) run() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.work()
	}()
	s.readLoop()
	close(s.jobs)
	s.end()
	<-done
	s.ws.Close()
}

func (s *responsesSocket) readLoop() {
	cfg := &s.api.srv.cfg
	s.ws.SetReadLimit(MaxOpenAIBody)
	refresh := func() { s.ws.SetReadDeadline(time.Now().Add(cfg.ReadTimeout)) }
	refresh()
	s.ws.SetPongHandler(func(string) error { refresh(); return nil })
	for {
		_, data, err := s.ws.ReadMessage()
		if err != nil {
			return // gorilla has answered protocol errors and oversize messages
		}
		refresh()
		select {
		case s.jobs <- data:
		default:
			s.closeWith(websocket.ClosePolicyViolation, "too many queued response.create events")
			return
		}
	}
}

// work runs the queued events one at a time and pings the client while idle.
func (s *responsesSocket) work() {
	ping := time.NewTicker(s.api.srv.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case data, ok := <-s.jobs:
			if !ok {
				return
			}
			s.handle(data)
		case <-ping.C:
			deadline := time.Now().Add(s.api.srv.cfg.WriteTimeout)
			if s.ws.WriteControl(websocket.PingMessage, nil, deadline) != nil {
				s.markDead()
			}
		}
	}
}

// handle runs one client event.
func (s *responsesSocket) handle(data []byte) {
	var req responseRequest
	if aerr := decodeJSON(data, &req); aerr != nil {
		s.sendError("", aerr)
		return
	}
	if req.Type != "response.create" {
		s.sendError(req.StreamID, invalidRequest("type",
			"unknown event type %q; this socket takes response.create", req.Type))
		return
	}
	if req.Stream {
		s.sendError(req.StreamID, invalidRequest("stream",
			"stream is implicit over the WebSocket mode and must not be sent"))
		return
	}
	rs, aerr := s.api.startResponse(s.ctx, s.tenant, &req,
		func(n int) []string { return turnIDs(nil, n) })
	if aerr != nil {
		s.sendError(req.StreamID, aerr)
		return
	}
	s.api.streamResponse(s.ctx, s.tenant, rs, socketEvents{s: s, streamID: req.StreamID})
}

// socketEvents sends Responses stream events as socket messages, tagged with the
// stream_id of the response.create they answer, if it had one.
type socketEvents struct {
	s        *responsesSocket
	streamID string
}

func (e socketEvents) send(typ string, ev map[string]any) {
	if e.streamID != "" {
		ev["stream_id"] = e.streamID
	}
	e.s.write(ev)
}

func (s *responsesSocket) sendError(streamID string, e *apiError) {
	ev := errorEvent(e)
	ev["type"] = "error"
	ev["sequence_number"] = 0
	if streamID != "" {
		ev["stream_id"] = streamID
	}
	s.write(ev)
}

func (s *responsesSocket) write(v any) {
	if s.isDead() {
		return
	}
	data, err := json.Marshal(v)
	if err != nil {
		return
	}
	s.ws.SetWriteDeadline(time.Now().Add(s.api.srv.cfg.WriteTimeout))
	if s.ws.WriteMessage(websocket.TextMessage, data) != nil {
		s.markDead()
	}
}

func (s *responsesSocket) markDead() {
	s.deadMu.Lock()
	s.dead = true
	s.deadMu.Unlock()
	s.ws.Close() // unblocks the read loop
}

func (s *responsesSocket) isDead() bool {
	s.deadMu.Lock()
	defer s.deadMu.Unlock()
	return s.dead
}

// closeWith sends a close frame and closes the socket; the read loop ends.
func (s *responsesSocket) closeWith(code int, reason string) {
	msg := websocket.FormatCloseMessage(code, reason)
	s.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	s.end()
	s.markDead()
}

// goingAway closes the socket with 1001 at shutdown; a response being streamed
// stops being followed, and runs on in its session.
func (s *responsesSocket) goingAway() {
	s.closeWith(websocket.CloseGoingAway, "server shutting down")
}
