//go:build linux

package transport_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stated-dev/stated/providers/anthropic"
	"github.com/stated-dev/stated/providers/sim"
	"github.com/stated-dev/stated/session"
	"github.com/stated-dev/stated/storage"
	"github.com/stated-dev/stated/transport"
)

// The memory of idle connections, measured in process.
//
// The server is a real transport.Server behind a real http.Server on a loopback
// listener, over a real session.Manager whose store is the in-memory one (an
// open session's memory does not depend on the store; Badger's own caches would
// only blur the figure). Each client opens a WebSocket, sends open, reads its
// session frame, and then stays silent.
//
// The clients live in the same process but outside the Go runtime: they are
// plain blocking sockets made with syscall, not registered with the netpoller,
// and after their handshake they hold nothing but a file descriptor in a slice
// allocated before the first reading. The short-lived goroutines that dial them
// have ended before the second reading. So the difference between the two
// readings, both taken after forced collections, is the server's alone.

var (
	idleConns = flag.Int("idle.conns", 2000, "connections of BenchmarkIdleConnections")
	idleHeap  = flag.String("idle.heapprofile", "",
		"write a heap profile here while BenchmarkIdleConnections' connections are open")
)

// idleWarmup is how many connections open before the first reading.
const idleWarmup = 16

// idleFootprint is what one idle connection with its session costs the server.
type idleFootprint struct {
	heap       float64 // bytes of live heap objects
	stack      float64 // bytes of goroutine stacks
	goroutines float64
}

func (f idleFootprint) total() float64 { return f.heap + f.stack }

// memReading is a reading of the runtime's memory classes.
type memReading struct {
	heap, stack uint64
	goroutines  int
}

func readMemory() memReading {
	// Two collections: the first may leave finalizer-held objects for the second.
	runtime.GC()
	runtime.GC()
	s := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
	}
	metrics.Read(s)
	return memReading{heap: s[0].Value.Uint64(), stack: s[1].Value.Uint64(),
		goroutines: runtime.NumGoroutine()}
}

// idleServer is a stated server for idle measurements; its provider is the
// simulator, which idle sessions never call.
type idleServer struct {
	api  *transport.Server
	mgr  *session.Manager
	http *http.Server
	ln   net.Listener
	sim  *httptest.Server
}

func startIdleServer(tb testing.TB) *idleServer {
	tb.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := &idleServer{sim: httptest.NewServer(sim.New(sim.Options{}))}
	prov := anthropic.New(anthropic.Config{BaseURL: s.sim.URL, APIKey: "test"})
	mgr, err := session.NewManager(session.Config{Model: "claude-sonnet-4-5",
		Logger: quiet}, storage.NewMemory(), prov)
	if err != nil {
		tb.Fatal(err)
	}
	api, err := transport.NewServer(transport.Config{Logger: quiet}, mgr)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.api, s.mgr, s.ln = api, mgr, ln
	s.http = &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: nil}
	go s.http.Serve(ln)
	return s
}

func (s *idleServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.api.Shutdown(ctx)
	s.http.Close()
	s.mgr.Close(ctx)
	s.sim.Close()
}

// measureIdle opens n idle connections with a session each to a fresh server
// and returns what each costs the server.
func measureIdle(tb testing.TB, n int) idleFootprint {
	tb.Helper()
	srv := startIdleServer(tb)
	defer srv.stop()
	port := srv.ln.Addr().(*net.TCPAddr).Port
	fds := make([]int, 0, idleWarmup+n)
	defer func() {
		for _, fd := range fds {
			syscall.Close(fd)
		}
	}()

	// A few connections first, left open and not counted: what the process builds
	// once (the token encoder, the HTTP server's pools) is not a connection's.
	opened, err := openIdle(port, idleWarmup)
	fds = append(fds, opened...)
	if err != nil {
		tb.Fatal(err)
	}
	waitConnections(tb, srv.api, idleWarmup)

	before := readMemory()
	opened, err = openIdle(port, n)
	fds = append(fds, opened...)
	if err != nil {
		tb.Fatal(err)
	}
	waitConnections(tb, srv.api, idleWarmup+n)
	after := readMemory()
	if *idleHeap != "" {
		writeHeapProfile(tb, *idleHeap)
	}

	per := float64(n)
	return idleFootprint{
		heap:       (float64(after.heap) - float64(before.heap)) / per,
		stack:      (float64(after.stack) - float64(before.stack)) / per,
		goroutines: float64(after.goroutines-before.goroutines) / per,
	}
}

// waitConnections waits until the server counts n connections and their
// goroutines have settled.
func waitConnections(tb testing.TB, api *transport.Server, n int) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for api.Connections() != n {
		if time.Now().After(deadline) {
			tb.Fatalf("%d connections open, want %d", api.Connections(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A connection's writer may still be finishing its last write.
	prev := -1
	for g := runtime.NumGoroutine(); g != prev; g = runtime.NumGoroutine() {
		if time.Now().After(deadline) {
			break
		}
		prev = g
		time.Sleep(100 * time.Millisecond)
	}
}

func writeHeapProfile(tb testing.TB, path string) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		tb.Fatal(err)
	}
}

// openIdle opens n sessions on 127.0.0.1:port, each on its own raw socket,
// and returns the sockets, those that opened when it fails included.
func openIdle(port, n int) ([]int, error) {
	const workers = 8
	var (
		mu    sync.Mutex
		fds   = make([]int, 0, n)
		first error
		next  = make(chan struct{}, n)
		wg    sync.WaitGroup
	)
	for range n {
		next <- struct{}{}
	}
	close(next)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			for range next {
				fd, err := openRawSession(port, buf)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				if err == nil {
					fds = append(fds, fd)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return fds, first
}

// openRawSession connects a blocking socket, upgrades it to stated.v1, sends
// open and reads until the session frame arrives.
func openRawSession(port int, buf []byte) (int, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	if err := handshakeRaw(fd, port, buf); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	return fd, nil
}

func handshakeRaw(fd, port int, buf []byte) error {
	tv := syscall.Timeval{Sec: 10}
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO,
		&tv); err != nil {
		return fmt.Errorf("timeout: %w", err)
	}
	addr := &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
	if err := syscall.Connect(fd, addr); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	req := fmt.Sprintf("GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"+
		"Upgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"+
		"Sec-WebSocket-Protocol: stated.v1\r\n\r\n", port)
	if err := writeAll(fd, []byte(req)); err != nil {
		return err
	}
	got, err := readUntil(fd, buf, 0, func(b []byte) bool {
		return bytes.Contains(b, []byte("\r\n\r\n"))
	})
	if err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	if !bytes.HasPrefix(buf[:got], []byte("HTTP/1.1 101 ")) {
		return fmt.Errorf("upgrade refused: %q", buf[:min(got, 64)])
	}
	if err := writeAll(fd, maskedText([]byte(`{"type":"open"}`))); err != nil {
		return err
	}
	end := bytes.Index(buf[:got], []byte("\r\n\r\n")) + 4
	rest := copy(buf, buf[end:got])
	_, err = readUntil(fd, buf, rest, func(b []byte) bool {
		return bytes.Contains(b, []byte(`"type":"session"`))
	})
	if err != nil {
		return fmt.Errorf("session frame: %w", err)
	}
	return nil
}

// maskedText is a client's text frame carrying p (shorter than 126 bytes).
func maskedText(p []byte) []byte {
	mask := [4]byte{1, 2, 3, 4}
	f := append([]byte{0x81, 0x80 | byte(len(p))}, mask[:]...)
	for i, b := range p {
		f = append(f, b^mask[i%4])
	}
	return f
}

func writeAll(fd int, p []byte) error {
	for len(p) > 0 {
		n, err := syscall.Write(fd, p)
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		p = p[n:]
	}
	return nil
}

// readUntil reads into buf after its first have bytes until done says the
// bytes so far suffice, and returns how many there are.
func readUntil(fd int, buf []byte, have int, done func([]byte) bool) (int, error) {
	for !done(buf[:have]) {
		if have == len(buf) {
			return have, errors.New("no end in sight")
		}
		n, err := syscall.Read(fd, buf[have:])
		if err != nil {
			return have, fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			return have, io.ErrUnexpectedEOF
		}
		have += n
	}
	return have, nil
}

// BenchmarkIdleConnections reports what one connected, idle session costs the
// server: heap bytes, stack bytes, their sum and goroutines, per connection,
// averaged over the iterations. -idle.conns sets the number of connections.
func BenchmarkIdleConnections(b *testing.B) {
	var sum idleFootprint
	for range b.N {
		f := measureIdle(b, *idleConns)
		sum.heap += f.heap
		sum.stack += f.stack
		sum.goroutines += f.goroutines
	}
	per := float64(b.N)
	b.ReportMetric(sum.heap/per, "heap-B/conn")
	b.ReportMetric(sum.stack/per, "stack-B/conn")
	b.ReportMetric(sum.total()/per, "B/conn")
	b.ReportMetric(sum.goroutines/per, "goroutines/conn")
	b.ReportMetric(0, "ns/op")
}

func TestAnIdleSessionCostsOneGoroutineAndUnder16KiB(t *testing.T) {
	f := measureIdle(t, 500)
	t.Logf("per idle connection: %.0f heap bytes, %.0f stack bytes, %.2f goroutines",
		f.heap, f.stack, f.goroutines)
	if f.goroutines > 1.1 {
		t.Errorf("%.2f goroutines per idle connection, want 1 (its reader)", f.goroutines)
	}
	if f.total() > 16<<10 {
		t.Errorf("%.0f bytes per idle connection, want at most 16 KiB", f.total())
	}
}
