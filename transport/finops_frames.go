package transport

import (
	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/session"
	"github.com/stated-dev/stated/transport/wire"
)

// finopsToWire copies an event's money fields to its wire form: the naive cost
// and budget note of an answer, a turn's declared value, a guard event's note.
func finopsToWire(e *session.Event, w *wire.Event) {
	w.NaiveCostUSD, w.ValueUSD, w.Priority = e.NaiveCostUSD, e.ValueUSD, e.Priority
	if b := e.Budget; b != nil {
		w.Budget = &wire.BudgetNote{Reason: b.Reason, RequestedModel: b.RequestedModel,
			RequestedMaxTokens: b.RequestedMaxTokens, MaxTokens: b.MaxTokens}
	}
	if g := e.Guard; g != nil {
		w.Guard = &wire.GuardNote{Reason: g.Reason, Detail: g.Detail, By: g.By}
	}
}

// costPolicyFromWire translates the cost_policy of an open frame; the session
// validates it. A limit without scope is a session limit.
func costPolicyFromWire(p *wire.CostPolicy) *session.CostPolicy {
	if p == nil {
		return nil
	}
	out := &session.CostPolicy{EconomyModel: p.EconomyModel, SoftMaxTokens: p.SoftMaxTokens,
		PremiumModel: p.PremiumModel, PremiumValueRatio: p.PremiumValueRatio}
	for _, l := range p.Limits {
		scope := finops.Scope(l.Scope)
		if scope == "" {
			scope = finops.ScopeSession
		}
		out.Limits = append(out.Limits, finops.Limit{Scope: scope,
			Window: finops.Window(l.Window), HardUSD: l.HardUSD, SoftUSD: l.SoftUSD,
			HardTokens: l.HardTokens, SoftTokens: l.SoftTokens})
	}
	return out
}
