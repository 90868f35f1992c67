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
	// 5xx, 529 and in-stream overload errors.
	Temporary bool
}

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
