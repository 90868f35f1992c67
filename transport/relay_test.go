package transport_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/stated-dev/stated/internal/natstest"
	"github.com/stated-dev/stated/providers/anthropic"
	"github.com/stated-dev/stated/providers/sim"
	"github.com/stated-dev/stated/session"
	"github.com/stated-dev/stated/storage"
	"github.com/stated-dev/stated/transport"
	"github.com/stated-dev/stated/transport/wire"
)

// Heartbeats of the forwarding tests: short, so that silence is found fast.
const (
	testBeat    = 50 * time.Millisecond
	testSilence = 400 * time.Millisecond
)

// peer is a node of a cluster in memory: its sessions live in a store and an
// ownership registry shared with the other peers, and it forwards over a real
// NATS server.
type peer struct {
	name string
	nc   *nats.Conn
	mgr  *session.Manager
	api  *transport.Server
	http *httptest.Server
	url  string
}

// cluster is the peers of one test and what they share.
type cluster struct {
	t      *testing.T
	nats   *natstest.Cluster
	store  storage.Store
	owners *session.MemoryOwners
	sim    *httptest.Server
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, nats: natstest.StartServer(t), store: storage.NewMemory(),
		owners: session.NewMemoryOwners()}
	c.sim = httptest.NewServer(sim.New(sim.Options{}))
	t.Cleanup(c.sim.Close)
	return c
}

func (c *cluster) peer(name string) *peer {
	c.t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	prov := anthropic.New(anthropic.Config{BaseURL: c.sim.URL, APIKey: "test"})
	mgr, err := session.NewManager(session.Config{Model: "claude-sonnet-4-5", MaxTokens: 256,
		Logger: quiet, Ownership: c.owners.Node(name)}, c.store, prov)
	if err != nil {
		c.t.Fatal(err)
	}
	api, err := transport.NewServer(transport.Config{Logger: quiet}, mgr)
	if err != nil {
		c.t.Fatal(err)
	}
	p := &peer{name: name, nc: c.nats.Connect(c.t), mgr: mgr, api: api}
	err = api.EnableRelays(transport.RelayConfig{Conn: p.nc, Node: name, Heartbeat: testBeat,
		Silence: testSilence})
	if err != nil {
		c.t.Fatal(err)
	}
	p.http = httptest.NewServer(api)
	p.url = "ws" + strings.TrimPrefix(p.http.URL, "http") + "/v1/ws"
	c.t.Cleanup(p.stop)
	return p
}

// stop shuts the peer down in order; calling it twice is harmless.
func (p *peer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.api.Shutdown(ctx)
	p.http.Close()
	p.mgr.Close(ctx)
}

// closeCode reads until the connection closes and returns its close code.
func (c *rawConn) closeCode(within time.Duration) int {
	c.t.Helper()
	c.ws.SetReadDeadline(time.Now().Add(within))
	for {
		_, _, err := c.ws.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		if err != nil {
			c.t.Fatalf("connection ended without a close frame: %v", err)
		}
	}
}

func TestResumeOnAnotherNodeIsForwardedToTheOwner(t *testing.T) {
	c := newCluster(t)
	a, b := c.peer("a"), c.peer("b")

	owner := dialRaw(t, a.url)
	id := owner.open().SessionID
	owner.send(`{"type":"turn","turn_id":"u1","text":"hello"}`)
	first := owner.answer()

	via := dialRaw(t, b.url)
	via.send(`{"type":"resume","session_id":"` + id + `","epoch":1,"last_seq":0}`)
	sess := via.until(wire.TypeSession)
	if sess.SessionID != id || sess.Missed != 2 {
		t.Fatalf("session frame through the relay: %+v, want the session with 2 missed", sess)
	}
	if caught := via.answer(); caught.Seq != first.Seq || caught.Text != first.Text {
		t.Fatalf("caught up with answer %d %q, want %d %q", caught.Seq, caught.Text, first.Seq,
			first.Text)
	}

	via.send(`{"type":"turn","turn_id":"u2","text":"and again"}`)
	if ack := via.until(wire.TypeAck); ack.Seq != 3 || ack.TurnID != "u2" {
		t.Fatalf("ack through the relay: %+v", ack)
	}
	delta := via.until(wire.TypeDelta)
	answer := via.answer()
	if delta.Seq != 4 || answer.Seq != 4 || answer.Status != "complete" {
		t.Fatalf("answer through the relay: delta seq %d, answer %+v", delta.Seq, answer)
	}
	if seen := owner.answer(); seen.Seq != 4 {
		t.Fatalf("the owner's client saw answer %d, want 4", seen.Seq)
	}
	if b.mgr.LiveSessions() != 0 || c.owners.Owner(id) != "a" {
		t.Fatalf("the relaying node loaded the session (%d live, owner %q)",
			b.mgr.LiveSessions(), c.owners.Owner(id))
	}
}

func TestForwardedConnectionCloses(t *testing.T) {
	tests := []struct {
		name string
		// end takes the session away from the owner, in its own way.
		end  func(owner *peer, id string)
		want int
	}{
		{"with going away when the owner shuts down",
			func(owner *peer, _ string) { owner.stop() }, wire.CloseGoingAway},
		{"with session moved when the owner goes silent",
			func(owner *peer, _ string) { owner.nc.Close() }, wire.CloseSessionMoved},
		{"with session moved when the owner drops the session",
			func(owner *peer, id string) { owner.mgr.Drop(id, errors.New("lease lost")) },
			wire.CloseSessionMoved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(t)
			a, b := c.peer("a"), c.peer("b")
			id := dialRaw(t, a.url).open().SessionID

			via := dialRaw(t, b.url)
			via.send(`{"type":"resume","session_id":"` + id + `","epoch":1}`)
			via.until(wire.TypeSession)
			tt.end(a, id)
			if got := via.closeCode(5 * time.Second); got != tt.want {
				t.Fatalf("close code %d, want %d", got, tt.want)
			}
		})
	}
}

func TestResumeWhenTheOwnerDoesNotAnswerIsRetryable(t *testing.T) {
	c := newCluster(t)
	a, b := c.peer("a"), c.peer("b")
	id := dialRaw(t, a.url).open().SessionID
	c.owners.Revoke(id)
	a.mgr.Drop(id, errors.New("lease lost"))
	if err := c.owners.Node("ghost").Acquire(context.Background(), id); err != nil {
		t.Fatal(err)
	}

	via := dialRaw(t, b.url)
	via.send(`{"type":"resume","session_id":"` + id + `","epoch":1}`)
	f := via.until(wire.TypeError)
	if f.Code != wire.CodeOwnerUnavailable || !f.Retry {
		t.Fatalf("resume of a session whose owner is gone: %+v, want retryable %s", f,
			wire.CodeOwnerUnavailable)
	}

	c.owners.Revoke(id) // the ghost's lease runs out
	via.send(`{"type":"resume","session_id":"` + id + `","epoch":1}`)
	if s := via.until(wire.TypeSession); s.SessionID != id {
		t.Fatalf("resume after the takeover: %+v", s)
	}
	if c.owners.Owner(id) != "b" {
		t.Fatalf("owner after the takeover = %q, want b", c.owners.Owner(id))
	}
}
