package finops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/stated-dev/stated/storage"
)

// Scope says what a limit counts.
type Scope string

// The scopes of a limit.
const (
	// ScopeTenant counts every call of the tenant.
	ScopeTenant Scope = "tenant"
	// ScopeSession counts the calls of one session; a tenant's session limit
	// applies to each of its sessions on its own.
	ScopeSession Scope = "session"
)

// Window is the period a limit counts over, in UTC.
type Window string

// The windows of a limit.
const (
	WindowDay   Window = "day"   // from 00:00 UTC
	WindowMonth Window = "month" // from the first of the month, 00:00 UTC
	WindowTotal Window = "total" // since the first call
)

// MaxLimits bounds the limits of one tenant or session.
const MaxLimits = 16

// Limit caps what one scope may spend over one window, in USD, in tokens or
// both. A zero amount sets no cap.
//
// A hard cap refuses a call whose worst case does not fit: spent plus reserved
// plus the call's worst case must stay at or below it. A soft cap is passed with
// a degraded call instead: a cheaper model, fewer output tokens.
type Limit struct {
	Scope  Scope  `json:"scope"`
	Window Window `json:"window"`
	// HardUSD and SoftUSD are caps on cost.
	HardUSD float64 `json:"hard_usd,omitempty"`
	SoftUSD float64 `json:"soft_usd,omitempty"`
	// HardTokens and SoftTokens are caps on tokens, prompt and output, every
	// category counted.
	HardTokens int64 `json:"hard_tokens,omitempty"`
	SoftTokens int64 `json:"soft_tokens,omitempty"`
}

// Validate checks l: a known scope and window, non-negative finite amounts, at
// least one cap, and no soft cap at or above its hard one. It returns
// ErrInvalidLimit.
func (l Limit) Validate() error {
	switch {
	case l.Scope != ScopeTenant && l.Scope != ScopeSession:
		return fmt.Errorf("%w: scope %.40q: want tenant or session", ErrInvalidLimit, l.Scope)
	case l.Window != WindowDay && l.Window != WindowMonth && l.Window != WindowTotal:
		return fmt.Errorf("%w: window %.40q: want day, month or total", ErrInvalidLimit,
			l.Window)
	case !validUSD(l.HardUSD) || !validUSD(l.SoftUSD) || l.HardTokens < 0 || l.SoftTokens < 0:
		return fmt.Errorf("%w: a negative or non-finite amount", ErrInvalidLimit)
	case l.HardUSD == 0 && l.SoftUSD == 0 && l.HardTokens == 0 && l.SoftTokens == 0:
		return fmt.Errorf("%w: no cap", ErrInvalidLimit)
	case l.HardUSD > 0 && l.SoftUSD >= l.HardUSD:
		return fmt.Errorf("%w: soft_usd %g not below hard_usd %g", ErrInvalidLimit, l.SoftUSD,
			l.HardUSD)
	case l.HardTokens > 0 && l.SoftTokens >= l.HardTokens:
		return fmt.Errorf("%w: soft_tokens %d not below hard_tokens %d", ErrInvalidLimit,
			l.SoftTokens, l.HardTokens)
	}
	return nil
}

// ValidateLimits checks a list of limits: each valid, at most MaxLimits, and only
// of scope, when scope is not empty.
func ValidateLimits(limits []Limit, scope Scope) error {
	if len(limits) > MaxLimits {
		return fmt.Errorf("%w: %d limits, at most %d", ErrInvalidLimit, len(limits), MaxLimits)
	}
	for i, l := range limits {
		if err := l.Validate(); err != nil {
			return fmt.Errorf("limit %d: %w", i, err)
		}
		if scope != "" && l.Scope != scope {
			return fmt.Errorf("%w: limit %d: scope %s where only %s is allowed",
				ErrInvalidLimit, i, l.Scope, scope)
		}
	}
	return nil
}

// windowStart returns the start of the window w that holds t.
func windowStart(w Window, t time.Time) time.Time {
	t = t.UTC()
	switch w {
	case WindowDay:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	case WindowMonth:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Time{}
}

// budgetPrefix keys the limits of a tenant: budget/<tenant> -> []Limit (JSON).
const budgetPrefix = "budget/"

// storedLimits reads the limits of tenant from kv; none is not an error.
func storedLimits(ctx context.Context, kv storage.KV, tenant string) ([]Limit, error) {
	data, _, err := kv.Get(ctx, budgetPrefix+tenant)
	if errors.Is(err, storage.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("finops: read budget: %w", err)
	}
	var limits []Limit
	if err := json.Unmarshal(data, &limits); err != nil {
		return nil, fmt.Errorf("finops: decode budget of %s: %w", tenant, err)
	}
	return limits, nil
}

// Cost is what a call costs or may cost: USD and tokens.
type Cost struct {
	USD    float64
	Tokens int64
	// Unpriced is set when the price table does not know the model: USD is then
	// unknown, and a USD cap cannot bound the call.
	Unpriced bool
}

// LimitError is the error of a refused call: the hard cap it would pass. It
// matches ErrBudgetExceeded.
type LimitError struct {
	Limit Limit
	// Spent and Reserved are the window's standing when the call was refused; Need
	// is the worst case of the cheapest form of the call.
	Spent, Reserved, Need Cost
}

func (e *LimitError) Error() string {
	l := e.Limit
	if l.HardUSD > 0 && e.Spent.USD+e.Reserved.USD+e.Need.USD > l.HardUSD {
		return fmt.Sprintf("finops: budget exceeded: %s %s limit of %s USD: spent %s, "+
			"reserved %s, this call up to %s", l.Scope, l.Window, usd(l.HardUSD),
			usd(e.Spent.USD), usd(e.Reserved.USD), usd(e.Need.USD))
	}
	return fmt.Sprintf("finops: budget exceeded: %s %s limit of %d tokens: spent %d, "+
		"reserved %d, this call up to %d", l.Scope, l.Window, l.HardTokens, e.Spent.Tokens,
		e.Reserved.Tokens, e.Need.Tokens)
}

// Unwrap makes a LimitError match ErrBudgetExceeded.
func (e *LimitError) Unwrap() error { return ErrBudgetExceeded }

func usd(v float64) string {
	return fmt.Sprintf("%.6g", math.Round(v*1e6)/1e6)
}
