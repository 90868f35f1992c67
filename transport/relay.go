package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/stated-dev/stated/session"
	"github.com/stated-dev/stated/transport/wire"
)

// relay is the relaying node's side of a forwarded connection (see vconn.go):
// it passes the client's frames to the session's owner and the owner's frames
// to the client, unchanged. The conn's read loop starts, feeds and stops it;
// the owner's messages arrive on the subscription's goroutine.
type relay struct {
	c       *conn
	owner   string
	send    *relaySender
	sub     *nats.Subscription
	silence time.Duration

	// mu guards recv and heard.
	mu    sync.Mutex
	recv  relayReceiver
	heard time.Time

	done     chan struct{} // closed by stop
	stopOnce sync.Once
}

// relayTo forwards the connection to the session's owner when err says
// another node owns it, first is the resume frame that found it so, and it
// reports whether it dealt with the frame: by forwarding it, or by answering
// owner_unavailable (retryable) when the owner does not answer.
func (c *conn) relayTo(first *wire.ClientFrame, err error) bool {
	var owned *session.OwnedElsewhereError
	if !errors.As(err, &owned) {
		return false
	}
	c.srv.mu.Lock()
	rs := c.srv.relays
	c.srv.mu.Unlock()
	if _, virtual := c.ws.(*vsocket); virtual || rs == nil {
		// A forwarded connection is not forwarded again; the client resumes anew.
		c.sendError("", wire.CodeOwnerUnavailable, "the session is owned by another node")
		return true
	}
	data, err := json.Marshal(first)
	if err != nil {
		c.sendError("", wire.CodeInternal, "internal error; retry")
		return true
	}
	r, err := rs.dial(c, owned.Node)
	if err != nil {
		c.srv.log.Debug("forwarding refused", "owner", owned.Node, "err", err)
		c.sendError("", wire.CodeOwnerUnavailable, err.Error())
		return true
	}
	if c.sess != nil {
		c.sess.Unsubscribe(c)
		c.sess = nil
	}
	c.relay = r
	r.forward(data)
	return true
}

// forwarded passes a client frame to the owner when the connection is being
// forwarded, and reports whether it did. An open or resume frame ends the
// forwarding instead: the connection then serves it here.
func (c *conn) forwarded(f *wire.ClientFrame, data []byte) bool {
	if c.relay == nil {
		return false
	}
	if f.Type == wire.TypeOpen || f.Type == wire.TypeResume {
		c.stopRelay()
		return false
	}
	c.relay.forward(data)
	return true
}

// stopRelay ends the forwarding, if any, and tells the owner.
func (c *conn) stopRelay() {
	if c.relay != nil {
		c.relay.stop(true)
		c.relay = nil
	}
}

// dial asks owner for a virtual connection for c. It fails when the owner does
// not answer within the attach timeout (a dead node, or no such node) or
// refuses (it is shutting down).
func (rs *relays) dial(c *conn, owner string) (*relay, error) {
	nc, vc := rs.cfg.Conn, newVC()
	r := &relay{
		c: c, owner: owner, send: newRelaySender(nc, vcSubject(vc, "in")),
		silence: rs.cfg.Silence, heard: time.Now(), done: make(chan struct{}),
	}
	sub, err := nc.Subscribe(vcSubject(vc, "out"), r.onMessage)
	if err != nil {
		return nil, fmt.Errorf("transport: forward to %s: %w", owner, err)
	}
	r.sub = sub

	req, _ := json.Marshal(attachRequest{VC: vc, Tenant: c.tenant})
	msg, err := nc.Request(attachSubject(owner), req, rs.cfg.AttachTimeout)
	var reply attachReply
	if err == nil {
		err = json.Unmarshal(msg.Data, &reply)
	}
	if err == nil && !reply.OK {
		err = fmt.Errorf("%s: %s", reply.Code, reply.Message)
	}
	if err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("transport: the session's owner %s did not take the "+
			"connection: %w", owner, err)
	}
	go r.watch(rs.cfg.Heartbeat)
	return r, nil
}

// forward sends one client frame to the owner.
func (r *relay) forward(data []byte) {
	if err := r.send.frame(data); err != nil {
		r.fail("lost contact with the session's owner; reconnect and resume")
	}
}

// onMessage passes what the owner sent to the client. It runs on the
// subscription's goroutine.
func (r *relay) onMessage(msg *nats.Msg) {
	r.mu.Lock()
	r.heard = time.Now()
	data, closing, err := r.recv.take(msg)
	r.mu.Unlock()
	switch {
	case err != nil:
		r.fail("frames from the session's owner were lost; reconnect and resume")
	case closing != nil:
		code := closing.code
		if code == websocket.CloseNormalClosure || code == websocket.CloseNoStatusReceived {
			// The owner ended a connection the client did not end: resume.
			code = wire.CloseSessionMoved
		}
		r.c.closeWith(code, closing.reason)
		r.stop(false)
	case data != nil:
		r.c.enqueue(data)
	}
}

// watch sends heartbeats to the owner and closes the client's connection when
// the owner has been silent too long, until the relay stops.
func (r *relay) watch(every time.Duration) {
	go r.send.beat(every, r.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-tick.C:
		}
		r.mu.Lock()
		silent := time.Since(r.heard) > r.silence
		r.mu.Unlock()
		if silent {
			r.fail("lost contact with the session's owner; reconnect and resume")
			return
		}
	}
}

// fail closes the client's connection with CloseSessionMoved, for the client
// to resume where the session can be served, and stops the relay.
func (r *relay) fail(reason string) {
	r.c.closeWith(wire.CloseSessionMoved, reason)
	r.stop(true)
}

// stop ends the relay; with tellOwner, the owner is told to end its virtual
// connection. It is safe to call more than once.
func (r *relay) stop(tellOwner bool) {
	r.stopOnce.Do(func() {
		close(r.done)
		_ = r.sub.Unsubscribe()
		if tellOwner {
			_ = r.send.close(websocket.CloseNormalClosure, "")
		}
	})
}

// relaySender publishes one direction of a forwarded connection: frames, in
// pieces when they exceed a NATS message, and the close, numbered from 1; and
// heartbeats, not numbered. It is safe for concurrent use.
type relaySender struct {
	nc      *nats.Conn
	subject string
	chunk   int

	// mu guards seq and keeps numbered messages in the order of their numbers.
	mu  sync.Mutex
	seq uint64
}

func newRelaySender(nc *nats.Conn, subject string) *relaySender {
	return &relaySender{nc: nc, subject: subject, chunk: relayChunk(nc)}
}

// frame publishes one frame.
func (s *relaySender) frame(data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		piece, more := data, false
		if len(piece) > s.chunk {
			piece, more = data[:s.chunk], true
		}
		if err := s.publishLocked(relayFrame, piece, more, 0); err != nil {
			return err
		}
		if !more {
			return nil
		}
		data = data[s.chunk:]
	}
}

// close publishes the end of the connection with a WebSocket close code.
func (s *relaySender) close(code int, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.publishLocked(relayClose, []byte(reason), false, code)
}

// beat publishes a heartbeat every period until done closes.
func (s *relaySender) beat(every time.Duration, done <-chan struct{}) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			msg := nats.NewMsg(s.subject)
			msg.Header.Set(hdrRelayKind, relayBeat)
			_ = s.nc.PublishMsg(msg)
		}
	}
}

// publishLocked numbers and publishes one message. s.mu must be held.
func (s *relaySender) publishLocked(kind string, data []byte, more bool, code int) error {
	s.seq++
	msg := nats.NewMsg(s.subject)
	msg.Header.Set(hdrRelayKind, kind)
	msg.Header.Set(hdrRelaySeq, strconv.FormatUint(s.seq, 10))
	if more {
		msg.Header.Set(hdrRelayMore, "1")
	}
	if kind == relayClose {
		msg.Header.Set(hdrRelayCode, strconv.Itoa(code))
	}
	msg.Data = data
	return s.nc.PublishMsg(msg)
}

// relayReceiver reads one direction of a forwarded connection: it checks that
// numbered messages run without a gap and puts frames back together. Its user
// serializes the calls.
type relayReceiver struct {
	got     uint64 // the number of the last numbered message
	partial []byte // the pieces of the frame in progress
	limit   int64  // the largest frame taken; 0: no limit
}

// relayClosed is the end of a forwarded connection, as the other side sent it.
type relayClosed struct {
	code   int
	reason string
}

func (e *relayClosed) Error() string {
	return fmt.Sprintf("transport: forwarded connection closed with %d", e.code)
}

// take applies one message: it returns the frame the message completes, or
// the close it carries, or an error when a numbered message went missing or a
// frame passed the limit. A heartbeat returns nothing.
func (r *relayReceiver) take(msg *nats.Msg) ([]byte, *relayClosed, error) {
	kind := msg.Header.Get(hdrRelayKind)
	if kind == relayBeat {
		return nil, nil, nil
	}
	seq, err := strconv.ParseUint(msg.Header.Get(hdrRelaySeq), 10, 64)
	if err != nil || seq != r.got+1 {
		return nil, nil, fmt.Errorf("transport: forwarded message %q after %d: a gap",
			msg.Header.Get(hdrRelaySeq), r.got)
	}
	r.got = seq
	switch kind {
	case relayClose:
		code, _ := strconv.Atoi(msg.Header.Get(hdrRelayCode))
		return nil, &relayClosed{code: code, reason: string(msg.Data)}, nil
	case relayFrame:
	default:
		return nil, nil, fmt.Errorf("transport: forwarded message of kind %q", kind)
	}
	if r.limit > 0 && int64(len(r.partial)+len(msg.Data)) > r.limit {
		return nil, nil, errors.New("transport: forwarded frame over the read limit")
	}
	if msg.Header.Get(hdrRelayMore) != "" {
		r.partial = append(r.partial, msg.Data...)
		return nil, nil, nil
	}
	if len(r.partial) == 0 {
		return msg.Data, nil, nil
	}
	data := append(r.partial, msg.Data...)
	r.partial = nil
	return data, nil, nil
}
