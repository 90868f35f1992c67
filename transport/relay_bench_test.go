package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stated-dev/stated/internal/latency"
	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/providers/anthropic"
	"github.com/stated-dev/stated/providers/sim"
	"github.com/stated-dev/stated/session"
	"github.com/stated-dev/stated/storage"
	"github.com/stated-dev/stated/transport/wire"
)

// The relay path, from a delta the session hands over to the frame a client has
// read.
//
// The server is a real Server behind a real http.Server on a loopback listener;
// the client is a real WebSocket connection. Each delta is delivered the way a
// session delivers it: conn.Deliver with a NoteDelta, under a lock standing for
// the session's, its At stamped just before. An operation ends when the client
// has read the frame (or the burst's frames), so ns/op is the round trip through
// the encoder, the queue, the writer goroutine, the socket and the client's read.
//
// After its handshake the client reads frames straight from its socket with a
// reused buffer, so the allocations per operation are the server's alone. The
// relay figures (relay-p50-µs, relay-p99-µs) are the server's own relay
// histogram over the timed operations: At to the end of the frame's write.

// relayBurst is how many deltas a provider that has the whole answer ready
// hands over at once: a short answer of the zero-latency simulator.
const relayBurst = 12

// relayText is a text delta of the usual size.
const relayText = "The quick brown fox, "

func BenchmarkRelay(b *testing.B) {
	text := func(off int) session.Note {
		return session.Note{Kind: session.NoteDelta, Seq: 7, Offset: off,
			Delta: providers.Delta{Kind: providers.DeltaText, Text: relayText}}
	}
	call := func(off int) session.Note {
		return session.Note{Kind: session.NoteDelta, Seq: 7, Offset: off,
			Delta: providers.Delta{Kind: providers.DeltaToolCall, Index: 0,
				Arguments: `{"city": "Par`}}
	}
	b.Run("text", func(b *testing.B) { benchRelay(b, 1, text) })
	b.Run("tool_call", func(b *testing.B) { benchRelay(b, 1, call) })
	b.Run("burst12", func(b *testing.B) { benchRelay(b, relayBurst, text) })
}

// benchRelay delivers per operation burst notes made by note (given the
// offset) and waits until the client has read their frames.
func benchRelay(b *testing.B, burst int, note func(off int) session.Note) {
	rb := startRelayBench(b)
	defer rb.stop()
	var sessionMu sync.Mutex // stands for the session's lock, held while delivering
	off := 0
	deliver := func() {
		sessionMu.Lock()
		for range burst {
			n := note(off)
			n.Delta.At = time.Now()
			rb.conn.Deliver(n)
			off += len(n.Delta.Text) + len(n.Delta.Arguments)
		}
		sessionMu.Unlock()
		for range burst {
			rb.readDelta(b)
		}
	}
	deliver() // the first delta of the answer, and warm buffers

	before := rb.relayWindow(b, latency.Snapshot{}, int64(burst))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		deliver()
	}
	b.StopTimer()
	w := rb.relayWindow(b, before, int64(b.N*burst))
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(w.Quantile(0.50)), "relay-p50-µs")
	b.ReportMetric(us(w.Quantile(0.99)), "relay-p99-µs")
	if burst > 1 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*burst), "ns/delta")
	}
}

// relayBench is a server with one connected client.
type relayBench struct {
	srv  *Server
	mgr  *session.Manager
	http *http.Server
	sim  *httptest.Server
	ws   *websocket.Conn // the client
	raw  net.Conn        // the client's socket, read directly
	conn *conn           // the server's side of the client's connection
	buf  []byte          // the client's read buffer
}

func startRelayBench(b *testing.B) *relayBench {
	b.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	rb := &relayBench{sim: httptest.NewServer(sim.New(sim.Options{})),
		buf: make([]byte, 4096)}
	prov := anthropic.New(anthropic.Config{BaseURL: rb.sim.URL, APIKey: "test"})
	mgr, err := session.NewManager(session.Config{Model: "claude-sonnet-4-5",
		Logger: quiet}, storage.NewMemory(), prov)
	if err != nil {
		b.Fatal(err)
	}
	// No pings during the run: the client reads only deltas.
	srv, err := NewServer(Config{Logger: quiet, PingInterval: time.Hour,
		ReadTimeout: 2 * time.Hour}, mgr)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	rb.srv, rb.mgr = srv, mgr
	rb.http = &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go rb.http.Serve(ln)

	d := websocket.Dialer{Subprotocols: []string{wire.Subprotocol}}
	ws, _, err := d.Dial("ws://"+ln.Addr().String()+"/v1/ws", nil)
	if err != nil {
		b.Fatal(err)
	}
	// The server sends nothing before the first delta, so nothing of the stream
	// is buffered in the client's reader: the socket can be read directly.
	rb.ws, rb.raw = ws, ws.UnderlyingConn()
	rb.conn = rb.serverConn(b)
	return rb
}

// serverConn waits for the server to track the client's connection and returns
// it.
func (rb *relayBench) serverConn(b *testing.B) *conn {
	b.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		rb.srv.mu.Lock()
		for c := range rb.srv.conns {
			rb.srv.mu.Unlock()
			return c
		}
		rb.srv.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	b.Fatal("the server did not track the connection within 10s")
	return nil
}

// relayWindow returns the relay histogram since before once it holds want
// deltas: the writer records a delta after its write returns, which may be after
// the client has read it.
func (rb *relayBench) relayWindow(b *testing.B, before latency.Snapshot,
	want int64) latency.Snapshot {
	b.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		w := rb.srv.stats.relay.Snapshot().Sub(before)
		if w.Count == want {
			return w
		}
		if w.Count > want || time.Now().After(deadline) {
			b.Fatalf("relay histogram counted %d deltas, want %d", w.Count, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// readDelta reads one frame from the client's socket and checks that it is a
// delta frame.
func (rb *relayBench) readDelta(b *testing.B) {
	op, payload, err := rb.readFrame()
	if err != nil {
		b.Fatal(err)
	}
	if op != websocket.TextMessage || !bytes.HasPrefix(payload, []byte(`{"type":"delta"`)) {
		b.Fatalf("frame %d %q, want a delta", op, payload)
	}
}

// readFrame reads one unfragmented, unmasked server frame into rb.buf.
func (rb *relayBench) readFrame() (int, []byte, error) {
	hdr := rb.buf[:2]
	if _, err := io.ReadFull(rb.raw, hdr); err != nil {
		return 0, nil, err
	}
	op, n := int(hdr[0]&0x0f), uint64(hdr[1]&0x7f)
	if hdr[0]&0x80 == 0 || hdr[1]&0x80 != 0 {
		return 0, nil, fmt.Errorf("frame header %x: fragmented or masked", hdr)
	}
	switch n {
	case 126:
		if _, err := io.ReadFull(rb.raw, rb.buf[:2]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(rb.buf[:2]))
	case 127:
		if _, err := io.ReadFull(rb.raw, rb.buf[:8]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(rb.buf[:8])
	}
	if n > uint64(len(rb.buf)) {
		return 0, nil, fmt.Errorf("frame of %s bytes, over the buffer",
			strconv.FormatUint(n, 10))
	}
	payload := rb.buf[:n]
	_, err := io.ReadFull(rb.raw, payload)
	return op, payload, err
}

func (rb *relayBench) stop() {
	rb.ws.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rb.srv.Shutdown(ctx)
	rb.http.Close()
	rb.mgr.Close(ctx)
	rb.sim.Close()
}
