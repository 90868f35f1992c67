package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stated-dev/stated/cmd/stated/internal/replay"
	"github.com/stated-dev/stated/internal/natstest"
	"github.com/stated-dev/stated/transport/client"
	"github.com/stated-dev/stated/transport/wire"
)

// testLeaseTTL is the lease TTL of the cluster tests: short, so that a takeover
// after a crash takes seconds.
const testLeaseTTL = 2 * time.Second

// statedCluster is three NATS servers with JetStream and stated nodes n1..nN
// on them, all on loopback ports.
type statedCluster struct {
	t     *testing.T
	nats  *natstest.Cluster
	nodes []*server
	args  [][]string // each node's arguments, its address included once known
}

// startStatedCluster starts the NATS servers and n stated nodes, each with its
// own data directory and the arguments extra.
func startStatedCluster(t *testing.T, n int, extra ...string) *statedCluster {
	t.Helper()
	c := &statedCluster{t: t, nats: natstest.StartCluster(t, 3)}
	for i := range n {
		args := append([]string{"--data", t.TempDir(), "--nats", c.nats.URLs(),
			"--node", fmt.Sprintf("n%d", i+1), "--replicas", "3",
			"--lease-ttl", testLeaseTTL.String(), "--drain-timeout", "20s"}, extra...)
		s := startServer(t, append([]string{"--addr", "127.0.0.1:0"}, args...)...)
		c.nodes = append(c.nodes, s)
		c.args = append(c.args, append([]string{"--addr", s.addr}, args...))
	}
	return c
}

// urls returns the nodes' WebSocket URLs, starting with node first.
func (c *statedCluster) urls(first int) []string {
	var out []string
	for i := range c.nodes {
		out = append(out, c.nodes[(first+i)%len(c.nodes)].url())
	}
	return out
}

// restart starts node i again, on its address and data directory.
func (c *statedCluster) restart(i int) {
	c.t.Helper()
	c.nodes[i] = startServer(c.t, c.args[i]...)
}

// stop shuts node i down gracefully (SIGTERM) and waits until it is gone.
func (c *statedCluster) stop(i int) {
	c.t.Helper()
	s := c.nodes[i]
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		c.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		c.t.Fatalf("node %d did not stop within 30s of SIGTERM", i+1)
	}
}

// liveSessions reads the live sessions node i reports on /healthz.
func (c *statedCluster) liveSessions(i int) int {
	c.t.Helper()
	resp, err := http.Get("http://" + c.nodes[i].addr + "/healthz")
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct {
		Live int `json:"live_sessions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		c.t.Fatal(err)
	}
	return h.Live
}

// wsConn is a raw WebSocket to a node, for tests that must see each frame.
type wsConn struct {
	t  *testing.T
	ws *websocket.Conn
}

func dialWS(t *testing.T, url string) (*wsConn, error) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{wire.Subprotocol},
		HandshakeTimeout: 2 * time.Second}
	ws, _, err := d.Dial(url, nil)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { ws.Close() })
	return &wsConn{t: t, ws: ws}, nil
}

func (c *wsConn) send(f wire.ClientFrame) error {
	data, _ := json.Marshal(f)
	return c.ws.WriteMessage(websocket.TextMessage, data)
}

// next reads the next frame, waiting at most within.
func (c *wsConn) next(within time.Duration) (*wire.ServerFrame, error) {
	c.ws.SetReadDeadline(time.Now().Add(within))
	_, data, err := c.ws.ReadMessage()
	if err != nil {
		return nil, err
	}
	f := new(wire.ServerFrame)
	return f, json.Unmarshal(data, f)
}

// until reads frames until one satisfies ok.
func (c *wsConn) until(within time.Duration, ok func(*wire.ServerFrame) bool) (
	*wire.ServerFrame, error) {
	deadline := time.Now().Add(within)
	for {
		f, err := c.next(time.Until(deadline))
		if err != nil {
			return nil, err
		}
		if ok(f) {
			return f, nil
		}
	}
}

// startAnswer opens a session on url, sends a turn and returns once the
// first piece of its answer has arrived.
func startAnswer(t *testing.T, url string) (string, *wsConn) {
	t.Helper()
	c, err := dialWS(t, url)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.send(wire.ClientFrame{Type: wire.TypeOpen}); err != nil {
		t.Fatal(err)
	}
	s, err := c.until(10*time.Second, isType(wire.TypeSession))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.send(wire.ClientFrame{Type: wire.TypeTurn, TurnID: "u1",
		Text: "tell me a story"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.until(10*time.Second, isType(wire.TypeDelta)); err != nil {
		t.Fatalf("no delta: %v", err)
	}
	return s.SessionID, c
}

func isType(typ string) func(*wire.ServerFrame) bool {
	return func(f *wire.ServerFrame) bool { return f.Type == typ }
}

// resumeUntilAnswering resumes the session on url, again every retry while
// the node answers that the owner is unavailable (or cannot be reached), until
// a piece of the answer at seq 2 arrives; it returns that moment.
func resumeUntilAnswering(t *testing.T, url, id string, retry time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(6 * testLeaseTTL)
	for time.Now().Before(deadline) {
		c, err := dialWS(t, url)
		if err == nil {
			err = c.send(wire.ClientFrame{Type: wire.TypeResume, SessionID: id, Epoch: 1})
		}
		var f *wire.ServerFrame
		if err == nil {
			f, err = c.until(10*time.Second, func(f *wire.ServerFrame) bool {
				return f.Type == wire.TypeError || f.Seq == 2
			})
		}
		if err == nil && f.Type != wire.TypeError {
			return time.Now()
		}
		if err == nil && f.Code != wire.CodeOwnerUnavailable {
			t.Fatalf("resume refused: %+v", f)
		}
		if c != nil {
			c.ws.Close()
		}
		time.Sleep(retry)
	}
	t.Fatalf("the session was not served again within %s", 6*testLeaseTTL)
	return time.Time{}
}

// TestClusterFailoverAfterSIGKILL kills the owner of a session in the middle
// of an answer: another node must take the session over once the lease runs
// out and answer the turn again, and the log must hold the turn and one
// answer. It prints the failover time, from the kill to the first piece of
// the answer from the new owner, over STATED_FAILOVER_TRIALS trials (default
// 3).
func TestClusterFailoverAfterSIGKILL(t *testing.T) {
	trials := 3
	if v := os.Getenv("STATED_FAILOVER_TRIALS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("STATED_FAILOVER_TRIALS=%q", v)
		}
		trials = n
	}
	natstest.Binary(t)
	c := startStatedCluster(t, 3, "--sim-latency-tokens-per-second", "10")

	var took []time.Duration
	var ids []string
	for i := range trials {
		owner, other := i%3, (i+1)%3
		id, _ := startAnswer(t, c.nodes[owner].url())
		c.nodes[owner].kill()
		killed := time.Now()
		answering := resumeUntilAnswering(t, c.nodes[other].url(), id, 100*time.Millisecond)
		took = append(took, answering.Sub(killed))
		ids = append(ids, id)
		c.restart(owner)
	}

	for _, id := range ids {
		checkClusterLog(t, c.urls(0), id, 2)
	}
	slices.Sort(took)
	t.Logf("failover after SIGKILL over %d trials (lease TTL %s, resume retried every "+
		"100ms): p50 %s, p99 %s, min %s, max %s", trials, testLeaseTTL,
		took[len(took)/2].Round(time.Millisecond),
		took[(len(took)*99-1)/100].Round(time.Millisecond), took[0].Round(time.Millisecond),
		took[len(took)-1].Round(time.Millisecond))
}

// checkClusterLog resumes a session through the Go client on servers and
// checks, as checkLog does, that every turn is stored once and answered once,
// and that the log has at least least events.
func checkClusterLog(t *testing.T, servers []string, id string, least int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		s, err := client.Resume(ctx, client.Config{Servers: servers}, id, 1, 0)
		if err != nil {
			t.Fatalf("resume %s: %v", id, err)
		}
		h := s.History()
		s.Close()
		// The new owner may still be producing the answer: wait for it.
		if len(h) >= least && h[len(h)-1].Kind == "assistant" {
			if err := checkLog(h); err != nil {
				t.Fatalf("session %s: %v", id, err)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("session %s: %d events and no final answer", id, len(h))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestClusterStalledOwnerWritesNothing stops the owner of a session (SIGSTOP)
// in the middle of an answer for longer than its lease; another node takes
// the session over and answers the turn; then the stalled owner resumes
// (SIGCONT). It must drop the session and write nothing: no message of the
// session's log written under its ownership follows the new owner's fence.
func TestClusterStalledOwnerWritesNothing(t *testing.T) {
	natstest.Binary(t)
	c := startStatedCluster(t, 2, "--sim-latency-tokens-per-second", "10")
	id, _ := startAnswer(t, c.nodes[0].url())

	stalled := c.nodes[0].cmd.Process
	if err := stalled.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Resumed as soon as the new owner answers, before it stores the answer:
	// the stalled owner's answer would continue the log if the fence let it.
	resumeUntilAnswering(t, c.nodes[1].url(), id, 100*time.Millisecond)
	if err := stalled.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}

	// The old owner finds its lease gone and drops the session; its answer in
	// flight ends then, and must not reach the log.
	deadline := time.Now().Add(5 * testLeaseTTL)
	for c.liveSessions(0) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the stalled owner still holds the session")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for end := time.Now().Add(testLeaseTTL); time.Now().Before(end); {
		checkNoWriteAfterFence(t, c.nats, id, "n1")
		time.Sleep(100 * time.Millisecond)
	}
	checkClusterLog(t, []string{c.nodes[1].url()}, id, 2)
}

// checkNoWriteAfterFence reads the session's log from the stream and fails if
// any message written under stale's ownership, or under none, follows a fence
// by another node, or if no other node fenced the log.
func checkNoWriteAfterFence(t *testing.T, nc *natstest.Cluster, id, stale string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(nc.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	subject := "stated.log." + base64.RawURLEncoding.EncodeToString([]byte(id))
	stream, err := js.Stream(ctx, "STATED_LOG")
	if err != nil {
		t.Fatal(err)
	}
	last, err := stream.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	fenced := ""
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if errors.Is(err, nats.ErrNoResponders) && ctx.Err() == nil {
			// The consumer is not known everywhere yet.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("read the log: %v", err)
		}
		h := msg.Headers()
		kind, owner := h.Get("Stated-Kind"), h.Get("Stated-Owner")
		switch {
		case kind == "fence" && owner != stale:
			fenced = owner
		case fenced != "" && (owner == stale || owner == ""):
			t.Fatalf("a %s message written by %q (revision %q) follows the fence of %s",
				kind, owner, h.Get("Stated-Revision"), fenced)
		}
		md, _ := msg.Metadata()
		if md.Sequence.Stream >= last.Sequence {
			break
		}
	}
	if fenced == "" {
		t.Fatal("no other node fenced the log: the takeover did not happen")
	}
}

// TestClusterRollingRestartDuringReplay restarts every node in turn, each
// gracefully (SIGTERM, then started again), while a replay runs against all
// three: the replay must end without an error and every session's log must
// hold each turn once, answered once.
func TestClusterRollingRestartDuringReplay(t *testing.T) {
	data := sharedData(t)
	natstest.Binary(t)
	files := []string{
		filepath.Join(data, "conversations/taubench-airline.jsonl"),
		filepath.Join(data, "conversations/glaive-tools-en.jsonl"),
	}
	convs, err := replay.LoadFiles(files...)
	if err != nil {
		t.Fatal(err)
	}
	convs = convs[:min(len(convs), 90)] // enough to span three restarts
	c := startStatedCluster(t, 3, "--sim-replies", strings.Join(files, ","),
		"--sim-latency-tokens-per-second", "400")

	var done atomic.Int32
	progress := writerFunc(func(p []byte) { done.Add(int32(strings.Count(string(p), "\n"))) })
	type outcome struct {
		res *replay.Result
		err error
	}
	finished := make(chan outcome, 1)
	go func() {
		// Presets live in each node's own store, so the sessions carry their
		// system prompts in their open frames.
		res, err := replay.Run(context.Background(), replay.Options{Servers: c.urls(0),
			Concurrency: 6, OpenFrames: true, Progress: progress}, convs)
		finished <- outcome{res, err}
	}()

	for i := range c.nodes {
		for done.Load() < int32((i+1)*len(convs)/5) {
			time.Sleep(5 * time.Millisecond)
		}
		c.stop(i)
		c.restart(i)
	}
	restartedAt := done.Load()
	out := <-finished
	if out.err != nil || out.res.Errors != 0 {
		t.Fatalf("replay across the restarts: %v, %d errors: %v", out.err, out.res.Errors,
			out.res.ErrorSamples(3))
	}
	if int(restartedAt) >= len(convs) {
		t.Fatal("the replay ended before the last restart: the test tested nothing")
	}
	t.Logf("%d conversations, %d answers, %d reconnects; last restart after %d",
		out.res.Conversations, out.res.Turns, out.res.Reconnects, restartedAt)
	for _, id := range out.res.Sessions {
		checkClusterLog(t, c.urls(0), id, 2)
	}
}

// TestClusterGoesOnWithoutOneNATSServer kills one of the three NATS servers:
// turns on sessions of every node must go on, and nothing may be lost.
func TestClusterGoesOnWithoutOneNATSServer(t *testing.T) {
	natstest.Binary(t)
	c := startStatedCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var sessions []*client.Session
	for i := range c.nodes {
		s, err := client.Open(ctx, client.Config{Servers: []string{c.nodes[i].url()}},
			client.Settings{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Ask(ctx, "before", nil); err != nil {
			t.Fatalf("turn before the loss: %v", err)
		}
		sessions = append(sessions, s)
	}

	c.nats.Kill(0)
	for round := range 3 {
		for i, s := range sessions {
			ans, err := s.Ask(ctx, fmt.Sprintf("after %d", round), nil)
			if err != nil || ans.Status != "complete" {
				t.Fatalf("turn %d on node %d without a NATS server: %v, %+v", round, i+1, err,
					ans)
			}
		}
	}
	for _, s := range sessions {
		checkClusterLog(t, c.urls(0), s.ID(), 8)
	}
}
