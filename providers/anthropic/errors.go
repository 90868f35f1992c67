package anthropic

import (
	"errors"
	"fmt"

	"github.com/stated-dev/stated/providers"
)

// Sentinel errors of the Anthropic adapter, matched with errors.Is. Complete returns
// them before any HTTP call is made, except ErrResponseTooLarge.
var (
	// ErrInvalidRequest means the neutral request cannot be sent as a Messages
	// request: no model, no max tokens, an empty message, a tool schema that is not
	// JSON, a cache plan naming a message that does not exist or an unknown TTL.
	ErrInvalidRequest = errors.New("anthropic: invalid request")
	// ErrTooManyBreakpoints means the cache plan asks for more cache_control
	// breakpoints than the API accepts (four).
	ErrTooManyBreakpoints = errors.New("anthropic: more than 4 cache breakpoints")
	// ErrResponseTooLarge means a response passed Config.MaxResponseBytes. It also
	// matches providers.ErrBadStream.
	ErrResponseTooLarge = fmt.Errorf("anthropic: response passed its size limit: %w",
		providers.ErrBadStream)
)
