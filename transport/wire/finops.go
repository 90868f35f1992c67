package wire

// CostPolicy is the cost_policy of an open frame: the session's own budget limits
// and the models a soft limit or a turn's value switches to. docs/finops.md
// describes each field.
type CostPolicy struct {
	Limits            []Limit `json:"limits,omitempty"`
	EconomyModel      string  `json:"economy_model,omitempty"`
	SoftMaxTokens     int     `json:"soft_max_tokens,omitempty"`
	PremiumModel      string  `json:"premium_model,omitempty"`
	PremiumValueRatio float64 `json:"premium_value_ratio,omitempty"`
}

// Limit caps what a session may spend over a window ("day", "month", "total"),
// in USD, tokens or both; a zero cap is none. The scope of a session's own
// limit is "session" (the default when empty).
type Limit struct {
	Scope      string  `json:"scope,omitempty"`
	Window     string  `json:"window"`
	HardUSD    float64 `json:"hard_usd,omitempty"`
	SoftUSD    float64 `json:"soft_usd,omitempty"`
	HardTokens int64   `json:"hard_tokens,omitempty"`
	SoftTokens int64   `json:"soft_tokens,omitempty"`
}

// BudgetNote says how a budget or the turn's value changed an answer: reason
// "soft_limit", "value" or "priority", the session's own model and max_tokens,
// and the max_tokens the provider was given (the event's model is the one that
// answered).
type BudgetNote struct {
	Reason             string `json:"reason"`
	RequestedModel     string `json:"requested_model"`
	RequestedMaxTokens int    `json:"requested_max_tokens"`
	MaxTokens          int    `json:"max_tokens"`
}

// GuardNote is what a "paused" event says (reason "turn_rate" or
// "repeated_turns", and a detail with the figures) or a "resumed" one (by
// "client" or "admin").
type GuardNote struct {
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
	By     string `json:"by,omitempty"`
}
