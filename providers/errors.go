package providers

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors of the providers package, matched with errors.Is.
var (
	// ErrStreamCut means the stream ended before the provider said it was done.
	ErrStreamCut = errors.New("providers: stream ended before the answer was complete")
	// ErrEmptyAnswer means the provider returned neither text nor tool calls.
	ErrEmptyAnswer = errors.New("providers: empty answer")
	// ErrLineTooLong means an SSE line passed the reader's limit.
	ErrLineTooLong = errors.New("providers: sse line too long")
	// ErrBadStream means the provider sent bytes that do not parse as its stream format.
	ErrBadStream = errors.New("providers: malformed stream")
	// ErrResponseTooLarge means a response passed the adapter's size limit. It also
	// matches ErrBadStream.
	ErrResponseTooLarge = fmt.Errorf("providers: response passed its size limit: %w",
		ErrBadStream)
	// ErrInvalidOptions means options given to a constructor are out of bounds.
	ErrInvalidOptions = errors.New("providers: invalid options")
)

// Error types the adapters and decorators of this package set themselves.
const (
	// TypeConnection is the Error.Type of a request that got no HTTP response at
	// all: the connection was refused or reset, the name did not resolve, TLS
	// failed.
	TypeConnection = "connection_error"
	// TypeAttemptTimeout is the Error.Type of an attempt that sent nothing of the
	// answer within the Retrier's AttemptTimeout.
	TypeAttemptTimeout = "attempt_timeout"
)

// Error is a failure reported by a provider: an HTTP error status, or an error
// event inside a stream (Status is then 0 unless the event named one).
type Error struct {
	Provider   string        // "anthropic", "openai"
	Status     int           // HTTP status, 0 for an in-stream error without one
	Type       string        // the provider's error type, e.g. "overloaded_error"
	Message    string        // the provider's message
	RetryAfter time.Duration // from a retry-after header, 0 when absent
	// Temporary is true when the same request may succeed later: 408, 409, 429,
	// 5xx, 529, in-stream overload errors and connection errors.
	Temporary bool
	// Cause is the lower-level error behind a connection error, nil otherwise.
	Cause error
}

// Unwrap returns Cause, so that errors.Is sees through a connection error to the
// network error behind it.
func (e *Error) Unwrap() error { return e.Cause }

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("providers: %s: status %d %s: %s", e.Provider, e.Status, e.Type, e.Message)
	}
	return fmt.Sprintf("providers: %s: %s: %s", e.Provider, e.Type, e.Message)
}

// TemporaryStatus reports whether an HTTP status from a provider may succeed on retry.
func TemporaryStatus(status int) bool {
	return status == 408 || status == 409 || status == 429 || status >= 500
}
