package openai

import (
	"errors"
	"fmt"

	"github.com/stated-dev/stated/providers"
)

// Sentinel errors of the OpenAI adapter, matched with errors.Is.
var (
	// ErrInvalidRequest means the neutral request cannot be sent as a Chat
	// Completions request: no model, no messages, a negative max tokens, an empty
	// assistant message, an unknown role or a tool schema that is not JSON.
	// Complete returns it before any HTTP call.
	ErrInvalidRequest = errors.New("openai: invalid request")
	// ErrResponseTooLarge means a response passed Config.MaxResponseBytes. It also
	// matches providers.ErrBadStream.
	ErrResponseTooLarge = fmt.Errorf("openai: response passed its size limit: %w",
		providers.ErrBadStream)
)
