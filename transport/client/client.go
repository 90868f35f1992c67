// Package client is a Go client of the stated.v1 protocol. A Session holds one
// conversation on a server; it reconnects and resumes on its own, so a caller sees
// every answer once even when connections drop or the server restarts.
package client

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/stated-dev/stated/transport/wire"
)

// Config says how to reach the servers. The zero value of each field but Servers
// means its default.
type Config struct {
	// Servers are WebSocket URLs of the endpoint (ws://host:port/v1/ws); a URL
	// without a path gets /v1/ws. A session starts at one of them drawn at
	// random, so that sessions spread over the nodes of a cluster, and moves to
	// the next one when a connection cannot be made or its node goes away.
	Servers []string
	// Header is sent with every handshake (for example Authorization).
	Header http.Header
	// DialTimeout bounds one connection attempt. Default 5s.
	DialTimeout time.Duration
	// ReconnectFor is how long the session keeps trying to reconnect before a call
	// fails with ErrUnreachable. Default 60s.
	ReconnectFor time.Duration
	// ReadLimit bounds one frame from the server. Default 16 MiB.
	ReadLimit int64
	// ReadTimeout is how long the server may stay silent (no frame, no ping)
	// before the connection counts as lost and the session reconnects, to the
	// next server. Default 60s, above the server's ping interval.
	ReadTimeout time.Duration
	// Logger receives reconnect notices at debug level. Default: discarded.
	Logger *slog.Logger
}

// ParseServers splits a comma-separated list of server URLs.
func ParseServers(list string) []string {
	var out []string
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (c *Config) setDefaults() error {
	if len(c.Servers) == 0 {
		return errors.New("client: no server address")
	}
	for i, s := range c.Servers {
		if !strings.HasPrefix(s, "ws://") && !strings.HasPrefix(s, "wss://") {
			return fmt.Errorf("client: server %q is not a ws:// or wss:// URL", s)
		}
		if strings.Count(s, "/") == 2 {
			c.Servers[i] = s + "/v1/ws"
		}
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.ReconnectFor == 0 {
		c.ReconnectFor = 60 * time.Second
	}
	if c.ReadLimit == 0 {
		c.ReadLimit = 16 << 20
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 60 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Errors of the client.
var (
	// ErrUnreachable means no server answered for Config.ReconnectFor.
	ErrUnreachable = errors.New("client: no server reachable")
	// ErrClosed means the session was closed by its caller.
	ErrClosed = errors.New("client: session closed")
)

// ServerError is an error frame the server sent about a turn.
type ServerError struct {
	Code    string
	Message string
	Retry   bool
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("client: server refused: %s: %s", e.Code, e.Message)
}

// Settings are what a new session is opened with; zero fields take the server's
// defaults.
type Settings struct {
	Model     string
	System    string
	Tools     []wire.Tool
	MaxTokens int
	// Preset opens the session with a registered preset (PresetVersion 0: the
	// latest); System and Tools must then be empty.
	Preset        string
	PresetVersion int
}

// ToolResult answers one tool call.
type ToolResult struct {
	ToolCallID string
	Content    string
	IsError    bool
}

// Stats counts what a session did on the wire.
type Stats struct {
	BytesSent  int64 // WebSocket payload bytes sent, every frame included
	FramesSent int64
	Reconnects int
}

func newTurnID() string {
	var b [12]byte
	rand.Read(b[:])
	return "t-" + hex.EncodeToString(b[:])
}
