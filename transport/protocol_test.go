package transport_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stated-dev/stated/transport"
	"github.com/stated-dev/stated/transport/client"
	"github.com/stated-dev/stated/transport/wire"
)

func TestATurnIsAckedStreamedAndAnswered(t *testing.T) {
	n := startNode(t, transport.Config{})
	c := dialRaw(t, n.url)
	s := c.open()
	if s.SessionID == "" || s.Epoch == 0 || s.Seq != 0 {
		t.Fatalf("session frame %+v", s)
	}
	c.send(`{"type":"turn","turn_id":"t1","text":"Hello, who are you?"}`)
	ack := c.until(wire.TypeAck)
	if ack.Seq != 1 || ack.TurnID != "t1" {
		t.Fatalf("ack %+v", ack)
	}
	var text string
	for {
		f := c.read()
		if f.Type == wire.TypeDelta {
			if f.Seq != 2 || f.Offset != len(text) {
				t.Fatalf("delta %+v after %d bytes", f, len(text))
			}
			text += f.Text
			continue
		}
		if f.Type != wire.TypeEvent {
			t.Fatalf("unexpected frame %+v", f)
		}
		e := f.Event
		if e.Kind != "assistant" || e.Seq != 2 || e.Status != "complete" || e.Text != text {
			t.Fatalf("answer %+v, streamed %q", e, text)
		}
		if e.Usage == nil || e.Usage.InputTokens+e.Usage.CacheWrite5mTokens == 0 ||
			e.Usage.OutputTokens == 0 || e.Timing == nil {
			t.Fatalf("answer lacks usage or timing: %+v", e)
		}
		return
	}
}

func TestBadInputGetsATypedErrorAndLeavesTheSessionUsable(t *testing.T) {
	n := startNode(t, transport.Config{})
	c := dialRaw(t, n.url)

	c.send(`{"type":"turn","turn_id":"x","text":"before open"}`)
	if f := c.until(wire.TypeError); f.Code != wire.CodeNotAttached {
		t.Fatalf("turn before open: %+v", f)
	}
	c.open()
	cases := []struct {
		name, frame, code string
	}{
		{"malformed JSON", `{"type":"turn",`, wire.CodeBadFrame},
		{"an unknown field", `{"type":"turn","turn_id":"a","txt":"hi"}`, wire.CodeBadFrame},
		{"an unknown frame type", `{"type":"dance"}`, wire.CodeUnknownType},
		{"an empty turn", `{"type":"turn","turn_id":"a","text":"   "}`, wire.CodeEmptyTurn},
		{"a turn without an id", `{"type":"turn","text":"hi"}`, wire.CodeInvalid},
		{"a tool result for an unknown call",
			`{"type":"tool_result","turn_id":"b","tool_call_id":"nope","content":"x"}`,
			wire.CodeUnknownToolCall},
		{"a resume of a session that does not exist",
			`{"type":"resume","session_id":"doesnotexist","epoch":1,"last_seq":0}`,
			wire.CodeSessionNotFound},
		{"a retry with nothing to answer", `{"type":"retry"}`, wire.CodeNothingToAnswer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			c.send(tc.frame)
			f := c.until(wire.TypeError)
			if f.Code != tc.code || f.Message == "" {
				t.Fatalf("got %+v, want code %s", f, tc.code)
			}
			if f.Retry != wire.Retryable(tc.code) {
				t.Fatalf("retry flag %v for %s", f.Retry, tc.code)
			}
		})
	}
	c.t = t
	c.send(`{"type":"turn","turn_id":"ok","text":"Still there?"}`)
	if ack := c.until(wire.TypeAck); ack.Seq != 1 {
		t.Fatalf("first good turn acked at %d, want 1", ack.Seq)
	}
	if e := c.answer(); e.Status != "complete" {
		t.Fatalf("answer %+v", e)
	}
}

func TestAnOversizeFrameClosesWith1009(t *testing.T) {
	n := startNode(t, transport.Config{ReadLimit: 4096})
	c := dialRaw(t, n.url)
	c.open()
	c.send(`{"type":"turn","turn_id":"big","text":"` + strings.Repeat("x", 5000) + `"}`)
	c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := c.ws.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
			t.Fatalf("got %v, want close 1009", err)
		}
		return
	}
}

func TestATurnDuringAnAnswerIsBusy(t *testing.T) {
	n := startNode(t, transport.Config{})
	n.prov.setDelay(20 * time.Millisecond)
	c := dialRaw(t, n.url)
	c.open()
	c.send(`{"type":"turn","turn_id":"t1","text":"Tell me something long."}`)
	c.until(wire.TypeDelta)
	c.send(`{"type":"turn","turn_id":"t2","text":"And another thing."}`)
	f := c.until(wire.TypeError)
	if f.Code != wire.CodeBusy || !f.Retry || f.TurnID != "t2" {
		t.Fatalf("got %+v, want a retryable busy error for t2", f)
	}
	c.answer()
	c.send(`{"type":"turn","turn_id":"t2","text":"And another thing."}`)
	if ack := c.until(wire.TypeAck); ack.Seq != 3 {
		t.Fatalf("t2 acked at %d, want 3", ack.Seq)
	}
}

func TestResumeDeliversMissedEventsOnce(t *testing.T) {
	n := startNode(t, transport.Config{})
	c := dialRaw(t, n.url)
	s := c.open()
	c.send(`{"type":"turn","turn_id":"t1","text":"First question"}`)
	c.until(wire.TypeAck)
	c.ws.Close() // drop before the answer arrives

	// The answer finishes while the client is away.
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs, _ := n.store.Read(context.Background(), s.SessionID, 0, 0)
		if len(recs) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the answer was not stored while the client was away")
		}
		time.Sleep(5 * time.Millisecond)
	}

	c2 := dialRaw(t, n.url)
	c2.send(`{"type":"resume","session_id":"` + s.SessionID + `","epoch":1,"last_seq":1}`)
	got := c2.until(wire.TypeSession)
	if got.Snapshot || got.Missed != 1 || got.Seq != 2 {
		t.Fatalf("session frame %+v, want 1 missed and no snapshot", got)
	}
	if e := c2.read(); e.Type != wire.TypeEvent || e.Seq != 2 {
		t.Fatalf("catch-up %+v, want the answer at seq 2", e)
	}
	c2.send(`{"type":"ping"}`)
	if f := c2.read(); f.Type != wire.TypePong {
		t.Fatalf("after catch-up got %+v, want only the pong", f)
	}

	c3 := dialRaw(t, n.url)
	c3.send(`{"type":"resume","session_id":"` + s.SessionID + `","epoch":99,"last_seq":1}`)
	if got := c3.until(wire.TypeSession); !got.Snapshot || got.Missed != 2 {
		t.Fatalf("wrong epoch: %+v, want a snapshot of 2 events", got)
	}
}

func TestAClientDroppedMidAnswerResumesWithoutGapsOrRepeats(t *testing.T) {
	n := startNode(t, transport.Config{})
	n.prov.setDelay(15 * time.Millisecond)
	proxy := newCutProxy(t, strings.TrimPrefix(n.http.URL, "http://"))
	ctx := context.Background()
	sess, err := client.Open(ctx, client.Config{Servers: []string{proxy.url()}},
		client.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()

	var streamed strings.Builder
	deltas := 0
	answer, err := sess.Ask(ctx, "Please write a few sentences.", func(d client.Delta) {
		streamed.WriteString(d.Text)
		deltas++
		if deltas == 3 {
			proxy.cut()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if streamed.String() != answer.Text {
		t.Fatalf("streamed %q\nstored   %q", streamed.String(), answer.Text)
	}
	if deltas < 3 {
		t.Fatal("the answer ended before the connection was cut: the test tested nothing")
	}
	// Regression: the client's own acknowledged turns were missing from History.
	h := sess.History()
	if len(h) != 2 || h[0].Kind != "user" || h[1].Seq != answer.Seq {
		t.Fatalf("client history %+v: want the turn and its answer", h)
	}
}

func TestOriginsAndSubprotocolAreChecked(t *testing.T) {
	n := startNode(t, transport.Config{AllowedOrigins: []string{"https://app.example"}})
	cases := []struct {
		name   string
		origin string
		proto  string
		want   int
	}{
		{"a program without origin is accepted", "", wire.Subprotocol, 101},
		{"the server's own host is accepted", n.http.URL, wire.Subprotocol, 101},
		{"an allowed origin is accepted", "https://app.example", wire.Subprotocol, 101},
		{"another origin is refused", "https://evil.example", wire.Subprotocol, 403},
		{"a missing subprotocol is refused", "", "", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", n.http.URL+"/v1/ws", nil)
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			if c.proto != "" {
				req.Header.Set("Sec-WebSocket-Protocol", c.proto)
			}
			if c.origin != "" {
				req.Header.Set("Origin", c.origin)
			}
			if got := httpStatus(t, req); got != c.want {
				t.Fatalf("status %d, want %d", got, c.want)
			}
		})
	}
}

func TestAcknowledgedTurnsSurviveARestart(t *testing.T) {
	n := startNode(t, transport.Config{})
	ctx := context.Background()
	sess, err := client.Open(ctx, client.Config{Servers: []string{n.url}}, client.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sess.Ask(ctx, "Remember the number 42.", nil); err != nil {
		t.Fatal(err)
	}
	id, epoch := sess.ID(), sess.Epoch()
	sess.Close()

	n.restart()
	again, err := client.Resume(ctx, client.Config{Servers: []string{n.url}}, id, epoch, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	h := again.History()
	if len(h) != 2 || h[0].Text != "Remember the number 42." || h[1].Kind != "assistant" {
		t.Fatalf("history after restart: %+v", h)
	}
	if _, err := again.Ask(ctx, "Which number?", nil); err != nil {
		t.Fatal(err)
	}
	var se *client.ServerError
	if _, err := client.Resume(ctx, client.Config{Servers: []string{n.url}}, "nope", 1,
		0); !errors.As(err, &se) || se.Code != wire.CodeSessionNotFound {
		t.Fatalf("resume of an unknown session: %v", err)
	}
}

// Regression: the send queue was bounded in frames only, so a client that asked
// for large frames and never read them made the server hold gigabytes. The
// client reads nothing until the server has stopped reading its frames, which it
// does once the bound closes the connection: a client that read while the
// server queued could keep up, and no bound would be reached. The write timeout
// is longer than the test, so only the byte bound can stop the server reading.
func TestAClientThatDoesNotReadIsClosedAtTheByteBound(t *testing.T) {
	n := startNode(t, transport.Config{MaxQueuedBytes: 1 << 20, MaxQueuedFrames: 1 << 20,
		WriteTimeout: time.Minute})
	c := dialRaw(t, n.url)
	s := c.open()
	c.send(`{"type":"turn","turn_id":"big","text":"` + strings.Repeat("word ", 80000) + `"}`)
	c.answer()

	// Each resume queues the 400 KB turn again; each padded ping, a pong. The
	// pings fill the socket's buffers once the server reads no more, and a write
	// that waits seconds shows it has stopped.
	resume := `{"type":"resume","session_id":"` + s.SessionID + `","epoch":1,"last_seq":0}`
	ping := `{"type":"ping"` + strings.Repeat(" ", 64<<10) + `}`
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("the server still read frames after %d, none of whose answers "+
				"were read", i)
		}
		frame := ping
		if i < 100 {
			frame = resume
		}
		c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if c.ws.WriteMessage(websocket.TextMessage, []byte(frame)) != nil {
			break // the server stopped reading, or closed the connection
		}
	}

	c.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, _, err := c.ws.ReadMessage()
		if err == nil {
			continue
		}
		// The close frame may be lost to a reset: the server closes a socket whose
		// frames it did not read. Either way the connection ended; a timeout means
		// the server kept it open.
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the server kept the connection open: %v", err)
		}
		// A reset in the middle of a frame reads as 1006.
		if ce, ok := err.(*websocket.CloseError); ok && ce.Code != wire.CloseSlowConsumer &&
			ce.Code != websocket.CloseAbnormalClosure {
			t.Fatalf("closed with %d, want %d", ce.Code, wire.CloseSlowConsumer)
		}
		return
	}
}
