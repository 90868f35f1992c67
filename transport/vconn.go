package transport

// Forwarding between the nodes of a cluster. A client may connect to any node;
// when it resumes a session another node owns, its node (the relay) forwards
// the client's frames to the owner over NATS and the owner's frames back, byte
// for byte. The owner serves them on a virtual connection: the same conn, with
// the same frame handling, whose socket is carried by NATS instead of a
// WebSocket (vsocket below). relay.go is the relay's side.
//
// Subjects. The owner listens for attach requests on stated.relay.<node>.attach
// (<node> in unpadded base64url). A relay picks a random ID for the virtual
// connection, subscribes to stated.relay.vc.<id>.out, and asks the owner to
// attach; the owner subscribes to stated.relay.vc.<id>.in before it answers,
// so no frame is lost.
//
// Messages carry the header Stated-Relay-Kind: "frame" (a piece of a frame),
// "beat" (a heartbeat) or "close" (the connection ends; Stated-Relay-Code is
// the WebSocket close code and the payload the reason). Frames and closes are
// numbered per direction by Stated-Relay-Seq from 1, and each side checks the
// numbers run without a gap: one publisher and one subscriber keep them in
// order, so a gap means messages were lost, and the connection ends with
// CloseSessionMoved for the client to resume. A frame larger than one NATS
// message travels in pieces, all but the last marked Stated-Relay-More.
//
// Liveness. Each side sends a heartbeat every RelayConfig.Heartbeat and ends
// the connection when it has heard nothing for RelayConfig.Silence: the owner
// drops a virtual connection whose relay went away, and the relay closes the
// client's WebSocket with CloseSessionMoved when the owner went silent, so the
// client resumes on a node that can serve it.

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/stated-dev/stated/transport/wire"
)

// socket is what a conn reads frames from and writes frames to: a WebSocket
// (*websocket.Conn) or a virtual connection carried by NATS (*vsocket).
type socket interface {
	SetReadLimit(limit int64)
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
	SetPongHandler(h func(appData string) error)
	SetPingHandler(h func(appData string) error)
	ReadMessage() (messageType int, p []byte, err error)
	WriteMessage(messageType int, data []byte) error
	WriteControl(messageType int, data []byte, deadline time.Time) error
	Close() error
}

var (
	_ socket = (*websocket.Conn)(nil)
	_ socket = (*vsocket)(nil)
)

// Defaults and bounds of RelayConfig.
const (
	// DefaultRelayHeartbeat is how often each side of a forwarded connection
	// sends a heartbeat when RelayConfig.Heartbeat is zero.
	DefaultRelayHeartbeat = time.Second
	// DefaultRelaySilence is how long a side waits for a word from the other
	// before it ends the connection, when RelayConfig.Silence is zero.
	DefaultRelaySilence = 5 * time.Second
	// DefaultRelayAttachTimeout bounds the owner's answer to an attach request
	// when RelayConfig.AttachTimeout is zero.
	DefaultRelayAttachTimeout = 2 * time.Second

	// vsocketInbox bounds the messages from a relay waiting for the virtual
	// connection's read loop; a relay that floods past it loses the connection.
	vsocketInbox = 1024
	// relayChunkMargin is what headers may take of a NATS message beside a
	// piece of a frame.
	relayChunkMargin = 4 << 10
)

// Message headers and kinds of forwarded connections; see the top of this file.
const (
	hdrRelayKind = "Stated-Relay-Kind"
	hdrRelaySeq  = "Stated-Relay-Seq"
	hdrRelayMore = "Stated-Relay-More"
	hdrRelayCode = "Stated-Relay-Code"

	relayFrame = "frame"
	relayBeat  = "beat"
	relayClose = "close"
)

// RelayConfig connects a Server to the other nodes of its cluster, so that it
// serves forwarded connections for the sessions it owns and forwards its
// clients to the owners of the others.
type RelayConfig struct {
	// Conn is the node's NATS connection. Required; the caller closes it after
	// Server.Shutdown.
	Conn *nats.Conn
	// Node is this node's name in the cluster, as session.OwnedElsewhereError
	// names owners. Required.
	Node string
	// Heartbeat, Silence and AttachTimeout: see the defaults above. Silence must
	// exceed twice Heartbeat.
	Heartbeat     time.Duration
	Silence       time.Duration
	AttachTimeout time.Duration
}

func (c *RelayConfig) setDefaults() {
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultRelayHeartbeat
	}
	if c.Silence == 0 {
		c.Silence = DefaultRelaySilence
	}
	if c.AttachTimeout == 0 {
		c.AttachTimeout = DefaultRelayAttachTimeout
	}
}

// validate checks the bounds of c after defaults are applied.
func (c RelayConfig) validate() error {
	switch {
	case c.Conn == nil:
		return errors.New("transport: relays need a NATS connection")
	case c.Node == "":
		return errors.New("transport: relays need the node's name")
	case c.Heartbeat < 10*time.Millisecond || c.Heartbeat > time.Minute:
		return fmt.Errorf("transport: relay heartbeat %s outside 10ms to 1m", c.Heartbeat)
	case c.Silence <= 2*c.Heartbeat:
		return fmt.Errorf("transport: relay silence %s must exceed twice the heartbeat %s",
			c.Silence, c.Heartbeat)
	case c.AttachTimeout < 10*time.Millisecond:
		return fmt.Errorf("transport: relay attach timeout %s below 10ms", c.AttachTimeout)
	}
	return nil
}

// relays is a Server's side of forwarding.
type relays struct {
	cfg    RelayConfig
	attach *nats.Subscription
}

// attachRequest asks an owner for a virtual connection.
type attachRequest struct {
	VC     string `json:"vc"`
	Tenant string `json:"tenant"`
}

// attachReply answers an attachRequest: OK, or an error code of the protocol.
type attachReply struct {
	OK      bool   `json:"ok,omitempty"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// EnableRelays makes the server part of a cluster: it serves virtual
// connections forwarded by other nodes for the sessions it owns, and forwards
// its own clients to the owners of sessions it does not own. Call it once,
// before serving. When it returns, the NATS server holds the node's attach
// subscription, so another node's attach request finds it; it fails when the
// NATS server does not confirm that within the attach timeout. Shutdown stops it.
func (s *Server) EnableRelays(cfg RelayConfig) error {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	r := &relays{cfg: cfg}
	sub, err := cfg.Conn.Subscribe(attachSubject(cfg.Node), s.onAttach)
	if err != nil {
		return fmt.Errorf("transport: relays: %w", err)
	}
	// Subscribe only buffers the subscription: the round trip makes the NATS
	// server hold it before another node may ask for a connection.
	if err := cfg.Conn.FlushTimeout(cfg.AttachTimeout); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("transport: relays: %w", err)
	}
	r.attach = sub
	s.mu.Lock()
	s.relays = r
	s.mu.Unlock()
	return nil
}

// stopRelays stops taking forwarded connections; those open are closed with
// the other connections.
func (s *Server) stopRelays() {
	s.mu.Lock()
	r := s.relays
	s.mu.Unlock()
	if r != nil {
		_ = r.attach.Unsubscribe()
	}
}

// onAttach serves an attach request: it starts a virtual connection for the
// relay, unless the server is shutting down.
func (s *Server) onAttach(msg *nats.Msg) {
	var req attachRequest
	if err := json.Unmarshal(msg.Data, &req); err != nil || !validVC(req.VC) ||
		req.Tenant == "" {
		replyAttach(msg, attachReply{Code: wire.CodeInvalid, Message: "bad attach request"})
		return
	}
	cfg := s.relays.cfg
	vs, err := newVSocket(cfg, vcSubject(req.VC, "in"), vcSubject(req.VC, "out"))
	if err != nil {
		replyAttach(msg, attachReply{Code: wire.CodeOwnerUnavailable, Message: err.Error()})
		return
	}
	c := newConn(s, vs)
	c.tenant = req.Tenant
	if !s.track(c) {
		vs.Close()
		replyAttach(msg, attachReply{Code: wire.CodeOwnerUnavailable,
			Message: "the session's owner is shutting down"})
		return
	}
	replyAttach(msg, attachReply{OK: true})
	go c.run() // run untracks c when it ends
}

func replyAttach(msg *nats.Msg, r attachReply) {
	data, _ := json.Marshal(r)
	_ = msg.Respond(data)
}

// vsocket is the owner's end of a forwarded connection: a socket whose frames
// come from, and go to, the relay over NATS. Only the conn's write loop
// writes frames and closes; the heartbeat runs on a goroutine of its own.
type vsocket struct {
	sub     *nats.Subscription
	inbox   chan *nats.Msg
	silence time.Duration
	send    *relaySender

	// mu guards everything below.
	mu        sync.Mutex
	recv      relayReceiver
	deadline  time.Time // the conn's read deadline; zero: none
	heard     time.Time // when the relay was last heard from
	onPong    func(string) error
	closed    bool
	overflown bool

	kick      chan struct{} // cap 1: the deadline changed or a message was lost
	done      chan struct{} // closed by Close
	closeOnce sync.Once
}

// errVSocketClosed is what a virtual connection's reads return after Close.
var errVSocketClosed = errors.New("transport: virtual connection closed")

// newVSocket subscribes to the relay's messages on in and starts the
// heartbeat to out.
func newVSocket(cfg RelayConfig, in, out string) (*vsocket, error) {
	v := &vsocket{
		inbox: make(chan *nats.Msg, vsocketInbox), silence: cfg.Silence,
		send: newRelaySender(cfg.Conn, out), heard: time.Now(),
		kick: make(chan struct{}, 1), done: make(chan struct{}),
	}
	sub, err := cfg.Conn.Subscribe(in, v.onMessage)
	if err != nil {
		return nil, fmt.Errorf("transport: virtual connection: %w", err)
	}
	v.sub = sub
	go v.send.beat(cfg.Heartbeat, v.done)
	return v, nil
}

// onMessage queues a message from the relay for the read loop. It runs on the
// subscription's goroutine and never blocks.
func (v *vsocket) onMessage(msg *nats.Msg) {
	select {
	case v.inbox <- msg:
	default:
		v.mu.Lock()
		v.overflown = true
		v.mu.Unlock()
		v.poke()
	}
}

func (v *vsocket) poke() {
	select {
	case v.kick <- struct{}{}:
	default:
	}
}

// ReadMessage returns the next frame from the relay. It fails when the read
// deadline passes, when the relay has been silent for the silence timeout,
// when a message went missing, when the relay closed, or after Close.
func (v *vsocket) ReadMessage() (int, []byte, error) {
	for {
		wait, err := v.waitLeft()
		if err != nil {
			return 0, nil, err
		}
		t := time.NewTimer(wait)
		select {
		case msg := <-v.inbox:
			t.Stop()
			data, err := v.take(msg)
			if err != nil {
				return 0, nil, err
			}
			if data != nil {
				return websocket.TextMessage, data, nil
			}
		case <-v.kick:
			t.Stop()
		case <-v.done:
			t.Stop()
			return 0, nil, errVSocketClosed
		case <-t.C:
		}
	}
}

// waitLeft returns how long a read may still wait, or why it may not.
func (v *vsocket) waitLeft() (time.Duration, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case v.closed:
		return 0, errVSocketClosed
	case v.overflown:
		return 0, errors.New("transport: virtual connection: the relay sent too fast")
	}
	until := v.heard.Add(v.silence)
	if !v.deadline.IsZero() && v.deadline.Before(until) {
		until = v.deadline
	}
	wait := time.Until(until)
	if wait <= 0 {
		return 0, errors.New("transport: virtual connection: the relay went silent")
	}
	return wait, nil
}

// take applies one message from the relay and returns the frame it completes,
// if any. A heartbeat also counts as the pong the conn's read loop waits for.
func (v *vsocket) take(msg *nats.Msg) ([]byte, error) {
	v.mu.Lock()
	v.heard = time.Now()
	data, closing, err := v.recv.take(msg)
	onPong := v.onPong
	v.mu.Unlock()
	switch {
	case err != nil:
		return nil, err
	case closing != nil:
		return nil, closing
	case data == nil && onPong != nil:
		_ = onPong("")
	}
	return data, nil
}

// SetReadLimit bounds the frames the relay may send.
func (v *vsocket) SetReadLimit(limit int64) {
	v.mu.Lock()
	v.recv.limit = limit
	v.mu.Unlock()
}

// SetReadDeadline sets when a read waiting for a frame fails.
func (v *vsocket) SetReadDeadline(t time.Time) error {
	v.mu.Lock()
	v.deadline = t
	v.mu.Unlock()
	v.poke()
	return nil
}

// SetWriteDeadline does nothing: a publish to NATS does not wait for the relay.
func (v *vsocket) SetWriteDeadline(time.Time) error { return nil }

// SetPongHandler sets what runs when the relay's heartbeat arrives.
func (v *vsocket) SetPongHandler(h func(string) error) {
	v.mu.Lock()
	v.onPong = h
	v.mu.Unlock()
}

// SetPingHandler does nothing: the relay answers its client's pings itself.
func (v *vsocket) SetPingHandler(func(string) error) {}

// WriteMessage sends a text frame or a close to the relay. Pings are left out:
// the heartbeat does their work.
func (v *vsocket) WriteMessage(typ int, data []byte) error {
	switch typ {
	case websocket.TextMessage:
		return v.send.frame(data)
	case websocket.CloseMessage:
		code, reason := parseClose(data)
		return v.send.close(code, reason)
	}
	return nil
}

// WriteControl sends a close to the relay; other control messages are left
// out.
func (v *vsocket) WriteControl(typ int, data []byte, _ time.Time) error {
	if typ == websocket.CloseMessage {
		return v.WriteMessage(typ, data)
	}
	return nil
}

// Close stops the heartbeat and the subscription; reads fail after it. It is
// safe to call more than once.
func (v *vsocket) Close() error {
	v.closeOnce.Do(func() {
		v.mu.Lock()
		v.closed = true
		v.mu.Unlock()
		close(v.done)
		_ = v.sub.Unsubscribe()
	})
	return nil
}

// parseClose reads the code and reason of a WebSocket close payload.
func parseClose(data []byte) (int, string) {
	if len(data) < 2 {
		return websocket.CloseNoStatusReceived, ""
	}
	return int(binary.BigEndian.Uint16(data)), string(data[2:])
}

// attachSubject is where the owner node takes attach requests.
func attachSubject(node string) string {
	return "stated.relay." + base64.RawURLEncoding.EncodeToString([]byte(node)) + ".attach"
}

// vcSubject is the subject of one direction ("in": to the owner, "out": to the
// relay) of a virtual connection.
func vcSubject(vc, dir string) string {
	return "stated.relay.vc." + vc + "." + dir
}

// newVC returns a random virtual connection ID.
func newVC() string {
	return rand.Text()
}

// validVC reports whether vc can be a virtual connection ID: rand.Text's
// alphabet and length.
func validVC(vc string) bool {
	if len(vc) != 26 {
		return false
	}
	for i := 0; i < len(vc); i++ {
		c := vc[i]
		if !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// relayChunk is the largest piece of a frame one NATS message carries.
func relayChunk(nc *nats.Conn) int {
	return int(max(nc.MaxPayload()-relayChunkMargin, relayChunkMargin))
}
