package session

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/stated-dev/stated/providers"
)

// Settings are what a session is opened with. They are fixed for the session's
// life and stored in its meta record.
type Settings struct {
	Model     string           `json:"model"`
	System    string           `json:"system,omitempty"`
	Tools     []providers.Tool `json:"tools,omitempty"`
	MaxTokens int              `json:"max_tokens"`
	// FallbackModels are tried in order when Model fails before its answer
	// started with an error a retry could help; empty means the server's default
	// list. At most providers.MaxFallbackModels, none repeated, none equal to Model.
	FallbackModels []string `json:"fallback_models,omitempty"`
	// Cost is the session's budget limits and model policy; nil sets none.
	Cost *CostPolicy `json:"cost_policy,omitempty"`
	// Preset and PresetVersion name the preset the session was opened by (System
	// and Tools are copied from it); PresetVersion 0 at Open means the latest.
	Preset        string `json:"preset,omitempty"`
	PresetVersion int    `json:"preset_version,omitempty"`
	// Context is the session's rollup and rationing policy, defaults filled in.
	Context ContextPolicy `json:"context"`
}

// Limits bound what a client may put into a session.
type Limits struct {
	MaxTurnBytes   int // a user turn's text or a tool result's content
	MaxSystemBytes int
	MaxTools       int
	MaxToolBytes   int // one tool's name, description and schema together
	MaxTokens      int // the largest max_tokens a session may ask for
	MaxIDBytes     int // client turn IDs and tool call IDs
}

// DefaultLimits are the limits a Manager uses when its Config leaves them zero.
func DefaultLimits() Limits {
	return Limits{
		MaxTurnBytes:   512 << 10,
		MaxSystemBytes: 256 << 10,
		MaxTools:       128,
		MaxToolBytes:   64 << 10,
		MaxTokens:      64000,
		MaxIDBytes:     128,
	}
}

// normalize fills defaults and checks s against l.
func (s *Settings) normalize(l Limits, defaultModel string, defaultMaxTokens int) error {
	if s.Model == "" {
		s.Model = defaultModel
	}
	if s.MaxTokens == 0 {
		s.MaxTokens = defaultMaxTokens
	}
	switch {
	case len(s.Model) > 128:
		return fmt.Errorf("%w: model name longer than 128 bytes", ErrInvalid)
	case s.MaxTokens < 1 || s.MaxTokens > l.MaxTokens:
		return fmt.Errorf("%w: max_tokens must be between 1 and %d", ErrInvalid, l.MaxTokens)
	case len(s.System) > l.MaxSystemBytes:
		return fmt.Errorf("%w: system prompt over %d bytes", ErrInvalid, l.MaxSystemBytes)
	case !utf8.ValidString(s.System):
		return fmt.Errorf("%w: system prompt is not valid UTF-8", ErrInvalid)
	case len(s.Tools) > l.MaxTools:
		return fmt.Errorf("%w: more than %d tools", ErrInvalid, l.MaxTools)
	}
	if err := checkFallbackModels(s.Model, s.FallbackModels); err != nil {
		return err
	}
	if err := s.Cost.check(s); err != nil {
		return err
	}
	seen := make(map[string]bool, len(s.Tools))
	for i := range s.Tools {
		t := &s.Tools[i]
		if err := checkTool(t, l); err != nil {
			return fmt.Errorf("%w: tool %d: %s", ErrInvalid, i, err)
		}
		if seen[t.Name] {
			return fmt.Errorf("%w: tool %q defined twice", ErrInvalid, t.Name)
		}
		seen[t.Name] = true
	}
	return nil
}

// checkFallbackModels validates a session's fallback list against its model.
func checkFallbackModels(model string, fallback []string) error {
	if len(fallback) > providers.MaxFallbackModels {
		return fmt.Errorf("%w: more than %d fallback_models", ErrInvalid,
			providers.MaxFallbackModels)
	}
	seen := map[string]bool{model: true}
	for _, m := range fallback {
		switch {
		case m == "" || len(m) > 128:
			return fmt.Errorf("%w: a fallback model name must have 1 to 128 bytes", ErrInvalid)
		case seen[m]:
			return fmt.Errorf("%w: fallback model %q repeats the model or another fallback",
				ErrInvalid, m)
		}
		seen[m] = true
	}
	return nil
}

// emptySchema is the input schema of a tool that takes no arguments; both providers
// require one.
const emptySchema = `{"type":"object","properties":{}}`

// checkTool validates t and compacts its schema, so that the same tool sends the
// same bytes whatever white space the client used.
func checkTool(t *providers.Tool, l Limits) error {
	if t.Name == "" || len(t.Name) > 64 {
		return fmt.Errorf("name must have 1 to 64 bytes")
	}
	for _, r := range t.Name {
		ok := r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' ||
			r >= '0' && r <= '9'
		if !ok {
			return fmt.Errorf("name %q may only hold letters, digits, _ and -", t.Name)
		}
	}
	if len(t.Name)+len(t.Description)+len(t.InputSchema) > l.MaxToolBytes {
		return fmt.Errorf("over %d bytes", l.MaxToolBytes)
	}
	if len(t.InputSchema) == 0 {
		t.InputSchema = json.RawMessage(emptySchema)
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(t.InputSchema, &obj); err != nil || obj == nil {
		return fmt.Errorf("input_schema is not a JSON object")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, t.InputSchema); err != nil {
		return fmt.Errorf("input_schema: %v", err)
	}
	t.InputSchema = buf.Bytes()
	return nil
}
