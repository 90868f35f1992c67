package session

import (
	"fmt"
	"strings"
)

// ContextPolicy says how a session keeps its prompt small: when old turns are
// summarized (rollup), when old tool output is left out (rationing), and when a
// repeated block is sent once (dedup). A session's policy is fixed when it is
// opened, so its prompt never changes because the server's defaults did.
//
// A zero field takes the manager's default; -1 turns a mechanism off.
type ContextPolicy struct {
	// RollupHighTokens is the high watermark: once the verbatim turns after the
	// last summary pass it, the oldest are summarized, in one step, down to
	// RollupLowTokens. Default 12000.
	RollupHighTokens int `json:"rollup_high_tokens,omitempty"`
	// RollupLowTokens is the low watermark. Default a third of the high one.
	RollupLowTokens int `json:"rollup_low_tokens,omitempty"`
	// SummaryModel writes the summaries. Default: claude-haiku-4-5 for Claude
	// models, gpt-4.1-mini for the others.
	SummaryModel string `json:"summary_model,omitempty"`
	// RationAfterTurns is how many answers must follow a tool result before it may
	// be left out of the prompt (an agent's turn is one answer). Default 4.
	RationAfterTurns int `json:"ration_after_turns,omitempty"`
	// RationMinTokens is the smallest tool result worth leaving out. Default 1000.
	RationMinTokens int `json:"ration_min_tokens,omitempty"`
	// DedupMinTokens is the smallest tool result or user turn that is sent once
	// when it repeats one shown earlier in the prompt. Default 256.
	DedupMinTokens int `json:"dedup_min_tokens,omitempty"`
}

// DefaultContextPolicy is the policy of a manager whose Config leaves it zero.
func DefaultContextPolicy() ContextPolicy {
	return ContextPolicy{
		RollupHighTokens: 12000,
		RationAfterTurns: 4,
		RationMinTokens:  1000,
		DedupMinTokens:   256,
	}
}

// Bounds of a policy's fields.
const (
	minRollupHigh   = 1000
	maxPolicyTokens = 1 << 20
	maxRationTurns  = 1000
)

// withDefaults returns p with zero fields taken from d, the low watermark derived
// from the high one, and the summary model chosen for model.
func (p ContextPolicy) withDefaults(d ContextPolicy, model string) ContextPolicy {
	fill := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	fill(&p.RollupHighTokens, d.RollupHighTokens)
	fill(&p.RollupLowTokens, d.RollupLowTokens)
	fill(&p.RationAfterTurns, d.RationAfterTurns)
	fill(&p.RationMinTokens, d.RationMinTokens)
	fill(&p.DedupMinTokens, d.DedupMinTokens)
	if p.RollupLowTokens == 0 && p.RollupHighTokens > 0 {
		p.RollupLowTokens = p.RollupHighTokens / 3
	}
	if p.SummaryModel == "" {
		p.SummaryModel = d.SummaryModel
	}
	if p.SummaryModel == "" {
		p.SummaryModel = defaultSummaryModel(model)
	}
	return p
}

// defaultSummaryModel is the cheaper model of the same provider.
func defaultSummaryModel(model string) string {
	if strings.HasPrefix(model, "claude-") {
		return "claude-haiku-4-5"
	}
	return "gpt-4.1-mini"
}

// check validates a policy after defaults, with ErrInvalid.
func (p ContextPolicy) check() error {
	inRange := func(v, lo, hi int) bool { return v == -1 || v >= lo && v <= hi }
	switch {
	case !inRange(p.RollupHighTokens, minRollupHigh, maxPolicyTokens):
		return fmt.Errorf("%w: rollup_high_tokens must be -1 or %d to %d", ErrInvalid,
			minRollupHigh, maxPolicyTokens)
	case p.RollupHighTokens > 0 && (p.RollupLowTokens < 0 ||
		p.RollupLowTokens >= p.RollupHighTokens):
		return fmt.Errorf("%w: rollup_low_tokens must be 0 to below rollup_high_tokens",
			ErrInvalid)
	case !inRange(p.RationAfterTurns, 1, maxRationTurns):
		return fmt.Errorf("%w: ration_after_turns must be -1 or 1 to %d", ErrInvalid,
			maxRationTurns)
	case !inRange(p.RationMinTokens, 1, maxPolicyTokens):
		return fmt.Errorf("%w: ration_min_tokens must be -1 or 1 to %d", ErrInvalid,
			maxPolicyTokens)
	case !inRange(p.DedupMinTokens, 1, maxPolicyTokens):
		return fmt.Errorf("%w: dedup_min_tokens must be -1 or 1 to %d", ErrInvalid,
			maxPolicyTokens)
	case len(p.SummaryModel) > 128:
		return fmt.Errorf("%w: summary_model longer than 128 bytes", ErrInvalid)
	}
	return nil
}

// rollupOn, rationOn and dedupOn say whether each mechanism is enabled.
func (p *ContextPolicy) rollupOn() bool { return p.RollupHighTokens > 0 }
func (p *ContextPolicy) rationOn() bool {
	return p.RationAfterTurns > 0 && p.RationMinTokens > 0
}
func (p *ContextPolicy) dedupOn() bool { return p.DedupMinTokens > 0 }

// CheckContextPolicy validates a policy whose zero fields stand for defaults, as
// a server's configuration is. It returns an error matching ErrInvalid.
func CheckContextPolicy(p ContextPolicy) error {
	return p.withDefaults(DefaultContextPolicy(), "").check()
}
