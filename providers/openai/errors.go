package openai

import "errors"

// Sentinel errors of the OpenAI adapters, matched with errors.Is.
var (
	// ErrInvalidRequest means the neutral request cannot be sent: no model, no
	// messages, a negative max tokens, an empty assistant message, an unknown role,
	// a tool schema that is not JSON, an unknown cache retention, or a Config.Compat
	// that fails its Validate. Complete returns it before any HTTP call.
	ErrInvalidRequest = errors.New("openai: invalid request")
)
