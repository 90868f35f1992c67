package bench

import (
	"fmt"
	"io"
	"time"
)

// Options says what a run does. DefaultOptions gives every default; Validate
// gives the bounds.
type Options struct {
	// Server is the WebSocket URL of the server (ws://HOST:PORT, with or without
	// the /v1/ws path). /stats is read from the same host and port.
	Server string
	// Key is the tenant key sent with every handshake (Authorization: Bearer);
	// empty for a server without authentication.
	Key string
	// AdminKey authenticates the reads of /stats; empty for a server without
	// authentication.
	AdminKey string
	// Model is sent in every open frame; empty for the server's default.
	Model string

	// Sessions is how many connections the run opens, each with a new session.
	Sessions int
	// Turns is how many user turns each session sends, in rounds; ignored with
	// Idle.
	Turns int
	// Rate paces the sending of turns, in turns per second across all sessions;
	// 0 sends each round's turns as fast as they can be written.
	Rate float64
	// Timeout bounds the wait for each turn's answer, for each session frame and
	// each resume.
	Timeout time.Duration
	// TextBytes is the size of each generated user turn.
	TextBytes int
	// Seed chooses the generated text; the same seed gives the same texts.
	Seed uint64
	// ConnectRate is how many connections a second the run opens at most.
	ConnectRate float64

	// Idle makes the run measure memory per idle session instead of turns: it
	// opens the sessions, reads the server's memory, holds the connections for
	// Hold, then closes them.
	Idle bool
	// Hold is how long idle connections stay open after the measurement.
	Hold time.Duration
	// Settle is how long the run waits, once every idle session is attached and
	// the server counts the connections, before it reads the server's memory.
	Settle time.Duration

	// Resume measures resumes after the turn phase: every connection is closed,
	// the run waits up to ResumeWait for the server to evict the sessions, then
	// resumes each, ResumeConcurrency at a time.
	Resume            bool
	ResumeWait        time.Duration
	ResumeConcurrency int

	// Progress receives one line per phase; nil for none.
	Progress io.Writer
}

// DefaultOptions returns the options of a run with every default: 10 sessions
// of 10 turns of 300 bytes against ws://127.0.0.1:8080, resumes measured.
func DefaultOptions() Options {
	return Options{
		Server: "ws://127.0.0.1:8080", Sessions: 10, Turns: 10, Timeout: 30 * time.Second,
		TextBytes: 300, Seed: 1, ConnectRate: 2000, Hold: 5 * time.Second,
		Settle: time.Second, Resume: true, ResumeWait: 30 * time.Second, ResumeConcurrency: 1,
	}
}

// Limits of the options.
const (
	MaxSessions     = 1_000_000
	MaxTurns        = 100_000
	MaxTextBytes    = 512 << 10 // the protocol's limit on a turn's text
	MaxConcurrency  = 1024
	maxOptionPeriod = 24 * time.Hour
)

// Validate checks every option against its bounds; the error wraps ErrInvalid
// and names the option as its flag.
func (o Options) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
	}
	switch {
	case o.Sessions < 1 || o.Sessions > MaxSessions:
		return bad("--sessions must be between 1 and %d", MaxSessions)
	case !o.Idle && (o.Turns < 1 || o.Turns > MaxTurns):
		return bad("--turns must be between 1 and %d", MaxTurns)
	case !(o.Rate >= 0 && o.Rate <= 1e7): // NaN too
		return bad("--rate must be between 0 (unpaced) and 10000000 turns a second")
	case o.Timeout < time.Millisecond || o.Timeout > time.Hour:
		return bad("--timeout must be between 1ms and 1h")
	case o.TextBytes < 1 || o.TextBytes > MaxTextBytes:
		return bad("--text-bytes must be between 1 and %d", MaxTextBytes)
	case !(o.ConnectRate >= 1) || o.ConnectRate > 1e6:
		return bad("--connect-rate must be between 1 and 1000000 connections a second")
	case o.Hold < 0 || o.Hold > maxOptionPeriod:
		return bad("--hold must be between 0 and 24h")
	case o.Settle < 0 || o.Settle > time.Hour:
		return bad("--settle must be between 0 and 1h")
	case o.ResumeWait < 0 || o.ResumeWait > time.Hour:
		return bad("--resume-wait must be between 0 and 1h")
	case o.ResumeConcurrency < 1 || o.ResumeConcurrency > MaxConcurrency:
		return bad("--resume-concurrency must be between 1 and %d", MaxConcurrency)
	case len(o.Model) > 128:
		return bad("--model must be at most 128 bytes")
	}
	if _, err := newDialer(o.Server, o.Key, o.Timeout, time.Time{}); err != nil {
		return err
	}
	return nil
}
