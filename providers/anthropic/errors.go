package anthropic

import "errors"

// Sentinel errors of the Anthropic adapter, matched with errors.Is. Complete returns
// them before any HTTP call is made.
var (
	// ErrInvalidRequest means the neutral request cannot be sent as a Messages
	// request: no model, no max tokens, an empty message, a tool schema that is not
	// JSON, a cache plan naming a message that does not exist, an unknown TTL, two
	// TTLs for one breakpoint, or a 1-hour breakpoint after a 5-minute one.
	ErrInvalidRequest = errors.New("anthropic: invalid request")
	// ErrTooManyBreakpoints means the cache plan asks for more cache_control
	// breakpoints than the API accepts (four).
	ErrTooManyBreakpoints = errors.New("anthropic: more than 4 cache breakpoints")
)
