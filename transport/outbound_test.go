package transport_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stated-dev/stated/transport"
	"github.com/stated-dev/stated/transport/wire"
)

func TestAnIdleConnectionIsPingedAndStaysOpen(t *testing.T) {
	const ping, silence = 40 * time.Millisecond, 200 * time.Millisecond
	n := startNode(t, transport.Config{PingInterval: ping, ReadTimeout: silence})
	c := dialRaw(t, n.url)
	c.open()

	// The client reads all along, as a live client does, and so answers pings
	// with pongs; it sends nothing else.
	var pings atomic.Int64
	c.ws.SetPingHandler(func(data string) error {
		pings.Add(1)
		return c.ws.WriteControl(websocket.PongMessage, []byte(data),
			time.Now().Add(time.Second))
	})
	frames := make(chan string, 16)
	go func() {
		defer close(frames)
		for {
			_, data, err := c.ws.ReadMessage()
			if err != nil {
				return
			}
			frames <- string(data)
		}
	}()

	deadline := time.Now().Add(10 * time.Second)
	for pings.Load() < 3*int64(silence/ping) {
		if time.Now().After(deadline) {
			t.Fatalf("%d pings in 10s at one per %s", pings.Load(), ping)
		}
		time.Sleep(ping)
	}
	// Several read timeouts have passed: the pongs kept the connection open.
	c.send(`{"type":"ping"}`)
	select {
	case f, ok := <-frames:
		if !ok || !strings.Contains(f, `"type":"pong"`) {
			t.Fatalf("after %d pings: frame %q, open %v; want a pong", pings.Load(), f, ok)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pong")
	}
}

func TestAClientThatAnswersNoPingIsDroppedAfterTheReadTimeout(t *testing.T) {
	const ping, silence = 40 * time.Millisecond, 200 * time.Millisecond
	n := startNode(t, transport.Config{PingInterval: ping, ReadTimeout: silence})
	c := dialRaw(t, n.url)
	c.open()
	if got := n.api.Connections(); got != 1 {
		t.Fatalf("%d connections, want 1", got)
	}

	// The client reads nothing more, so it answers no ping.
	start := time.Now()
	for n.api.Connections() != 0 {
		if time.Since(start) > 10*time.Second {
			t.Fatal("a silent client is still connected after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if waited := time.Since(start); waited < silence/2 {
		t.Fatalf("dropped after %s, before the read timeout of %s", waited, silence)
	}
}

func TestFramesSentInManyBurstsArriveOnceEachAndInOrder(t *testing.T) {
	n := startNode(t, transport.Config{})
	c := dialRaw(t, n.url)

	// Each turn before open is refused with an error frame naming it; the
	// writer starts and stops many times while they are answered.
	const frames = 500
	go func() {
		for i := range frames {
			msg := fmt.Sprintf(`{"type":"turn","turn_id":"t%d","text":"hi"}`, i)
			if c.ws.WriteMessage(websocket.TextMessage, []byte(msg)) != nil {
				return
			}
			if i%50 == 0 {
				time.Sleep(time.Millisecond) // let the queue run dry now and then
			}
		}
	}()
	for i := range frames {
		f := c.read()
		if f.Type != wire.TypeError || f.Code != wire.CodeNotAttached ||
			f.TurnID != fmt.Sprintf("t%d", i) {
			t.Fatalf("frame %d: %+v", i, f)
		}
	}
}
