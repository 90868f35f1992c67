package replay

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/stated-dev/stated/transport/wire"
)

// presetBook registers one preset per distinct system prompt and tools with the
// server, once per run, over its HTTP API (PUT /v1/presets/{name}).
//
// A conversation that brings its own tools gets a preset of its own prompt and
// tools rather than sending them in the open frame: what the provider caches is
// the prefix of tools and system together, so one preset per distinct prefix is
// exactly one cache entry shared by every session that has it, and the open
// frame of every session is a name.
type presetBook struct {
	base   string // http(s)://host:port of the server
	header http.Header
	client *http.Client

	mu    sync.Mutex // guards done and bytes
	done  map[string]*presetCall
	bytes int64
}

// presetCall is one registration; its waiters block on ready.
type presetCall struct {
	ready chan struct{}
	err   error
}

// newPresetBook returns a book for the server at the WebSocket URL server.
func newPresetBook(server string, header http.Header) (*presetBook, error) {
	u, err := url.Parse(server)
	if err != nil {
		return nil, fmt.Errorf("replay: server url: %w", err)
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return nil, fmt.Errorf("replay: server url %q is not ws:// or wss://", server)
	}
	return &presetBook{base: u.Scheme + "://" + u.Host, header: header,
		client: http.DefaultClient, done: make(map[string]*presetCall)}, nil
}

// presetName names the preset of a system prompt and tools by their digest.
func presetName(system string, tools []wire.Tool) string {
	data, _ := json.Marshal(tools) // []wire.Tool always encodes
	sum := sha256.Sum256(append([]byte(system+"\x00"), data...))
	return "replay-" + hex.EncodeToString(sum[:8])
}

// register makes sure the preset of system and tools exists and returns its name.
// Concurrent calls for one preset register it once.
func (b *presetBook) register(ctx context.Context, system string,
	tools []wire.Tool) (string, error) {
	name := presetName(system, tools)
	b.mu.Lock()
	call, ok := b.done[name]
	if !ok {
		call = &presetCall{ready: make(chan struct{})}
		b.done[name] = call
	}
	b.mu.Unlock()
	if ok {
		select {
		case <-call.ready:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		return name, call.err
	}
	call.err = b.putRetrying(ctx, name, system, tools)
	if call.err != nil {
		b.mu.Lock()
		delete(b.done, name) // the next conversation of this preset tries again
		b.mu.Unlock()
	}
	close(call.ready)
	return name, call.err
}

// putRetrying registers a preset, trying again for up to a minute while the
// server cannot be reached or answers 5xx (it may be restarting).
func (b *presetBook) putRetrying(ctx context.Context, name, system string,
	tools []wire.Tool) error {
	deadline := time.Now().Add(time.Minute)
	wait := 50 * time.Millisecond
	for {
		err := b.put(ctx, name, system, tools)
		var perm *permanentError
		if err == nil || errors.As(err, &perm) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// permanentError is a refusal that trying again does not change.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func (b *presetBook) put(ctx context.Context, name, system string, tools []wire.Tool) error {
	body, err := json.Marshal(map[string]any{"system": system, "tools": tools})
	if err != nil {
		return fmt.Errorf("replay: preset: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut,
		b.base+"/v1/presets/"+url.PathEscape(name), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("replay: preset: %w", err)
	}
	for k, v := range b.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.client.Do(req)
	if err != nil {
		return fmt.Errorf("replay: register preset: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("replay: register preset: %s: %s", resp.Status,
			strings.TrimSpace(string(msg)))
		if resp.StatusCode < 500 {
			return &permanentError{err}
		}
		return err
	}
	b.mu.Lock()
	b.bytes += int64(len(body))
	b.mu.Unlock()
	return nil
}

// sent returns the request bodies' bytes sent so far.
func (b *presetBook) sent() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bytes
}
