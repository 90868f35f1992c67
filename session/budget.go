package session

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/providers"
)

// CostPolicy is what a session says about money when it is opened: its own
// budget limits, the cheaper model a soft limit falls back to, and the dearer
// model a valuable turn may use. Like the other settings, it is fixed for the
// session's life. The zero value sets nothing.
type CostPolicy struct {
	// Limits are the session's own budget limits, scope session; they apply
	// besides the tenant's.
	Limits []finops.Limit `json:"limits,omitempty"`
	// EconomyModel answers instead of the session's model once a soft limit is
	// reached, and answers low-priority turns. Empty: the session's model, with
	// fewer output tokens.
	EconomyModel string `json:"economy_model,omitempty"`
	// SoftMaxTokens is the answer length under a soft limit. Zero: a quarter of
	// the session's max_tokens, at least 1.
	SoftMaxTokens int `json:"soft_max_tokens,omitempty"`
	// PremiumModel answers a turn whose declared value justifies it (see
	// premiumJustified). Empty: never.
	PremiumModel string `json:"premium_model,omitempty"`
	// PremiumValueRatio is how many times the worst-case cost of the premium
	// call a turn's value_usd must be for the premium model to answer it. Zero:
	// DefaultPremiumValueRatio.
	PremiumValueRatio float64 `json:"premium_value_ratio,omitempty"`
}

// DefaultPremiumValueRatio: a premium answer may cost at most a tenth of what the
// client says the turn is worth.
const DefaultPremiumValueRatio = 10

// Turn priorities a client may declare.
const (
	PriorityLow    = "low"    // answered by the economy model, when the policy names one
	PriorityNormal = "normal" // the default
	PriorityHigh   = "high"   // answered by the premium model, when the policy names one
)

// maxValueUSD bounds a turn's declared value.
const maxValueUSD = 1e6

// check validates the policy against the session's settings.
func (p *CostPolicy) check(st *Settings) error {
	if p == nil {
		return nil
	}
	if err := finops.ValidateLimits(p.Limits, finops.ScopeSession); err != nil {
		return fmt.Errorf("%w: cost_policy: %v", ErrInvalid, err)
	}
	switch {
	case len(p.EconomyModel) > 128 || len(p.PremiumModel) > 128:
		return fmt.Errorf("%w: cost_policy: model name longer than 128 bytes", ErrInvalid)
	case p.SoftMaxTokens < 0 || p.SoftMaxTokens > st.MaxTokens:
		return fmt.Errorf("%w: cost_policy: soft_max_tokens must be between 0 and max_tokens",
			ErrInvalid)
	case p.PremiumValueRatio < 0 || p.PremiumValueRatio > 1e6 ||
		math.IsNaN(p.PremiumValueRatio):
		return fmt.Errorf("%w: cost_policy: premium_value_ratio must be between 0 and 1e6",
			ErrInvalid)
	}
	return nil
}

// checkTurnValue validates what a turn declares it is worth.
func checkTurnValue(in *Input) error {
	switch {
	case in.ValueUSD < 0 || in.ValueUSD > maxValueUSD || math.IsNaN(in.ValueUSD):
		return fmt.Errorf("%w: value_usd must be between 0 and %g", ErrInvalid, maxValueUSD)
	case in.Priority != "" && in.Priority != PriorityLow && in.Priority != PriorityNormal &&
		in.Priority != PriorityHigh:
		return fmt.Errorf("%w: priority must be low, normal or high", ErrInvalid)
	case in.Kind != KindUser && (in.ValueUSD != 0 || in.Priority != ""):
		return fmt.Errorf("%w: only a user turn declares a value", ErrInvalid)
	}
	return nil
}

// BudgetNote says how the budget policy changed an answer from what the session
// asks for. It is set on the answer event; nil when nothing changed.
type BudgetNote struct {
	// Reason is "soft_limit" (a soft limit was reached: cheaper model or shorter
	// answer), "value" (the turn's value bought the premium model) or "priority"
	// (a low-priority turn went to the economy model).
	Reason string `json:"reason"`
	// RequestedModel and RequestedMaxTokens are the session's own.
	RequestedModel     string `json:"requested_model"`
	RequestedMaxTokens int    `json:"requested_max_tokens"`
	// MaxTokens is the answer length the provider was given.
	MaxTokens int `json:"max_tokens"`
}

// admission is what the budget decided for the answer in flight: the reservation
// to release once its ledger entry is booked, and the write of its pending mark.
type admission struct {
	res     *finops.Reservation
	note    *BudgetNote
	marked  chan struct{} // closed once the pending mark is written (or failed)
	tenant  string
	session string
	seq     uint64
}

// answerForm is one way to answer: model and length.
type answerForm struct {
	model     string
	maxTokens int
	reason    string // the BudgetNote reason of the form; "" for the session's own
}

// admitAnswerLocked runs the guards of an answer about to start at seq, whose
// request is req with promptTokens prompt tokens (local count): the runaway guard,
// then the budget. It sets req's model and max_tokens to what the budget allows
// and keeps the admission for finish. A refusal is stored as a failed answer with
// error code budget_exceeded, and returned as an error matching
// finops.ErrBudgetExceeded; a pause returns ErrPaused. s.mu must be held.
func (s *Session) admitAnswerLocked(req *providers.Request, promptTokens int,
	seq uint64) error {
	s.admission = nil
	if err := s.guardLocked(); err != nil {
		return err
	}
	forms, normal := s.answerForms(promptTokens)
	adm := &admission{tenant: s.tenant, session: s.id, seq: seq}
	choice := 0
	if b := s.mgr.cfg.Budgets; b != nil {
		claim := finops.Claim{Tenant: s.tenant, Session: s.id, Normal: normal}
		if s.settings.Cost != nil {
			claim.SessionLimits = s.settings.Cost.Limits
		}
		for _, f := range forms {
			claim.Options = append(claim.Options, s.worstCase(f, promptTokens))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := b.Reserve(ctx, claim)
		if err != nil && s.staging {
			return err // stored after the turn (overlap.go)
		}
		if err != nil {
			return s.refuseLocked(err)
		}
		adm.res, choice = res, res.Choice
		if res.Soft && choice > normal {
			forms[choice].reason = "soft_limit"
		}
	}

	f := forms[choice]
	if f.reason != "" {
		adm.note = &BudgetNote{Reason: f.reason, RequestedModel: s.settings.Model,
			RequestedMaxTokens: s.settings.MaxTokens, MaxTokens: f.maxTokens}
	}
	req.Model, req.MaxTokens = f.model, f.maxTokens
	s.admission = adm
	s.markPending(adm)
	return nil
}

// answerForms returns the forms the next answer may take, in order of
// preference and falling cost, and the index of the session's own form.
func (s *Session) answerForms(promptTokens int) ([]answerForm, int) {
	st := &s.settings
	own := answerForm{model: st.Model, maxTokens: st.MaxTokens}
	p := st.Cost
	if p == nil {
		p = &CostPolicy{}
	}
	economy := answerForm{model: st.Model, maxTokens: max(1, st.MaxTokens/4),
		reason: "soft_limit"}
	if p.EconomyModel != "" {
		economy.model = p.EconomyModel
	}
	if p.SoftMaxTokens > 0 {
		economy.maxTokens = p.SoftMaxTokens
	}

	value, priority := s.turnValueLocked()
	switch {
	case priority == PriorityLow && p.EconomyModel != "":
		economy.reason = "priority"
		return []answerForm{economy}, 0
	case p.PremiumModel != "":
		premium := answerForm{model: p.PremiumModel, maxTokens: st.MaxTokens, reason: "value"}
		ratio := p.PremiumValueRatio
		if ratio == 0 {
			ratio = DefaultPremiumValueRatio
		}
		worst := s.worstCase(premium, promptTokens).USD
		if priority == PriorityHigh || value > 0 && value >= ratio*worst {
			return []answerForm{premium, own, economy}, 1
		}
	}
	return []answerForm{own, economy}, 0
}

// turnValueLocked returns the value and priority of the user turn the next
// answer answers: the last user turn of the log. s.mu must be held.
func (s *Session) turnValueLocked() (float64, string) {
	for i := len(s.events) - 1; i >= 0; i-- {
		if e := &s.events[i]; e.Kind == KindUser {
			return e.ValueUSD, e.Priority
		}
	}
	return 0, ""
}

// worstCase is the most an answer of form f can cost: every prompt token at the
// dearest input rate (uncached, or written to the cache for an hour, whichever
// the model prices higher) and max_tokens of output. A model the price table does
// not know costs 0 USD here; its tokens still count.
func (s *Session) worstCase(f answerForm, promptTokens int) finops.Cost {
	c := finops.Cost{Tokens: int64(promptTokens + f.maxTokens)}
	if s.mgr.cfg.Cost == nil {
		return c
	}
	for _, u := range []providers.Usage{
		{InputTokens: promptTokens, OutputTokens: f.maxTokens},
		{CacheWrite5mTokens: promptTokens, OutputTokens: f.maxTokens},
		{CacheWrite1hTokens: promptTokens, OutputTokens: f.maxTokens},
	} {
		usd, err := s.mgr.cfg.Cost(f.model, u)
		if err != nil {
			c.Unpriced = true
			continue
		}
		c.USD = max(c.USD, usd)
	}
	return c
}

// refuseLocked stores the refusal of an answer as a failed answer (unless the
// last event is already one), so every client of the session learns why the
// turn has no answer, and returns err. s.mu must be held.
func (s *Session) refuseLocked(err error) error {
	if !errors.Is(err, finops.ErrBudgetExceeded) {
		return fmt.Errorf("session: budget: %w", err)
	}
	last := len(s.events) - 1
	if last >= 0 && s.events[last].ErrorCode == CodeBudgetExceeded {
		return err
	}
	e := Event{Kind: KindAssistant, Time: time.Now().UTC(), Model: s.settings.Model,
		Status: StatusFailed, ErrorCode: CodeBudgetExceeded}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stored, aerr := s.appendLocked(ctx, e)
	if aerr != nil {
		s.mgr.log.Error("budget refusal not stored", "session", s.id, "err", aerr)
		return err
	}
	s.publishLocked(nil, stored)
	s.mgr.log.Info("answer refused by a budget", "session", s.id, "tenant", s.tenant,
		"err", err)
	return err
}

// CodeBudgetExceeded is the error code of an answer a budget refused.
const CodeBudgetExceeded = "budget_exceeded"

// requestTokensLocked is the local count of the prompt of the request just laid
// out. s.mu must be held.
func (s *Session) requestTokensLocked() int {
	if s.lastPrompt != nil {
		return s.lastPrompt.tokens()
	}
	return s.promptTokensLocked()
}

// checkPolicyModels refuses a cost policy naming a model the provider does not
// serve. Errors: ErrInvalid.
func (m *Manager) checkPolicyModels(st *Settings) error {
	if st.Cost == nil {
		return nil
	}
	for _, model := range []string{st.Cost.EconomyModel, st.Cost.PremiumModel} {
		if model != "" && !m.Serves(model) {
			return fmt.Errorf("%w: cost_policy: model %q is not served here", ErrInvalid, model)
		}
	}
	return nil
}
