package finops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/stated-dev/stated/storage"
)

// Budgets admits provider calls against the limits of tenants and sessions.
//
// It is the reservation table of one node: for every window a limit counts over,
// what the ledger says was spent and what calls in flight have reserved, guarded
// by one mutex, so that concurrent admissions cannot together pass a cap. What was
// spent is loaded from the ledger the first time a window is needed and kept up to
// date by observing the ledger. A cluster needs more: see docs/finops.md.
type Budgets struct {
	kv     storage.KV
	ledger *Ledger
	log    *slog.Logger
	now    func() time.Time

	// mu guards everything below.
	mu       sync.Mutex
	limits   map[string][]Limit // a tenant's limits, as stored; absent: not read yet
	windows  map[windowKey]*windowState
	counters map[string]*BudgetCounters
	admitted int // admissions since the last sweep
}

// windowKey names one window of one scope: session is empty for a tenant scope;
// start is the window's start in Unix seconds (0 for WindowTotal).
type windowKey struct {
	tenant, session string
	window          Window
	start           int64
}

type windowState struct {
	loaded   bool // spent holds every ledger entry of the window
	spent    Cost
	reserved Cost
	holders  int // reservations that hold a part of reserved
	lastUsed time.Time
}

// BudgetCounters counts a tenant's admissions that a limit changed.
type BudgetCounters struct {
	Refused  int64 // refused by a hard cap
	Degraded int64 // degraded by a soft cap
}

const (
	// sweepEvery is how many admissions pass between sweeps of unused windows.
	sweepEvery = 1024
	// idleWindow is how long an unused window stays in memory.
	idleWindow = time.Hour
)

// NewBudgets returns the budgets whose limits live in kv and whose spending is
// read from ledger. It registers an observer on ledger. A nil logger means
// slog.Default().
func NewBudgets(kv storage.KV, ledger *Ledger, log *slog.Logger) *Budgets {
	if log == nil {
		log = slog.Default()
	}
	b := &Budgets{
		kv: kv, ledger: ledger, log: log, now: time.Now,
		limits:   make(map[string][]Limit),
		windows:  make(map[windowKey]*windowState),
		counters: make(map[string]*BudgetCounters),
	}
	ledger.Observe(b.observe)
	return b
}

// SetLimits replaces the limits of tenant (scope tenant: the tenant as a whole;
// scope session: each of its sessions). An empty list removes them. Errors:
// ErrInvalidTenant, ErrInvalidLimit, or a storage error.
func (b *Budgets) SetLimits(ctx context.Context, tenant string, limits []Limit) error {
	if err := ValidTenant(tenant); err != nil {
		return err
	}
	if err := ValidateLimits(limits, ""); err != nil {
		return err
	}
	limits = slices.Clone(limits)
	if limits == nil {
		limits = []Limit{}
	}
	data, err := jsonMarshal(limits)
	if err != nil {
		return err
	}
	if _, err := b.kv.Put(ctx, budgetPrefix+tenant, data); err != nil {
		return fmt.Errorf("finops: store budget: %w", err)
	}
	b.mu.Lock()
	b.limits[tenant] = limits
	b.mu.Unlock()
	return nil
}

// Limits returns the limits of tenant; none is an empty list.
func (b *Budgets) Limits(ctx context.Context, tenant string) ([]Limit, error) {
	b.mu.Lock()
	limits, ok := b.limits[tenant]
	b.mu.Unlock()
	if ok {
		return slices.Clone(limits), nil
	}
	limits, err := storedLimits(ctx, b.kv, tenant)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if cached, ok := b.limits[tenant]; ok {
		return slices.Clone(cached), nil // set while this read ran: that one is newer
	}
	if limits == nil {
		limits = []Limit{}
	}
	b.limits[tenant] = limits
	return slices.Clone(limits), nil
}

// Claim asks to admit one provider call.
type Claim struct {
	Tenant  string
	Session string
	// SessionLimits are limits the session set for itself, scope session.
	SessionLimits []Limit
	// Options are the forms the call may take, in order of preference and of
	// falling cost, each with its worst-case cost. At least one.
	Options []Cost
	// Normal is the index of the call's own form: those before it are upgrades,
	// taken only under every cap; those after it are degradations, taken only
	// when the own form passes a soft cap.
	Normal int
}

// Reservation holds the worst case of an admitted call against every window it
// counts in, until Release.
type Reservation struct {
	// Choice is the index of the option admitted.
	Choice int
	// Soft is true when a soft cap degraded the call: Choice is past Normal, or
	// Normal passes a soft cap and nothing cheaper is offered.
	Soft bool
	// Limited is true when some limit applied to the call.
	Limited bool

	b     *Budgets
	held  []*windowState
	cost  Cost
	freed bool // guarded by b.mu
}

// Reserve admits a call atomically and reserves the worst case of the option it
// picks: the first option up to Normal that fits under every cap; else, if the
// Normal option passes a soft cap, the first degradation that fits under every
// cap, or failing that the cheapest form from Normal on that fits under every hard
// cap (Soft is then set). Otherwise, when a hard cap refuses the Normal option
// and no soft cap is passed, or nothing fits the hard caps, it reserves nothing
// and returns a *LimitError (matching ErrBudgetExceeded). Concurrent Reserves
// never admit more than the caps allow together. Other errors come from reading
// limits or the ledger.
func (b *Budgets) Reserve(ctx context.Context, c Claim) (*Reservation, error) {
	if len(c.Options) == 0 || c.Normal < 0 || c.Normal >= len(c.Options) {
		return nil, fmt.Errorf("%w: a claim needs options and its normal one", ErrInvalidLimit)
	}
	tenantLimits, err := b.Limits(ctx, c.Tenant)
	if err != nil {
		return nil, err
	}
	limits := applicable(tenantLimits, c.SessionLimits)
	if len(limits) == 0 {
		return &Reservation{b: b, freed: true}, nil
	}
	if err := refuseUnpriced(c, limits); err != nil {
		return nil, err
	}
	for range 3 {
		now := b.now()
		keys := make([]windowKey, len(limits))
		for i, l := range limits {
			keys[i] = keyOf(c.Tenant, c.Session, l, now)
		}
		if err := b.load(ctx, c.Tenant, keys); err != nil {
			return nil, err
		}
		r, err := b.admit(c, limits, keys, now)
		if err != errUnloaded {
			return r, err
		}
	}
	return nil, fmt.Errorf("finops: budget windows keep moving; retry")
}

// refuseUnpriced refuses a call whose cost is unknown when a USD cap applies:
// booked at nothing, it would pass any such cap unseen.
func refuseUnpriced(c Claim, limits []Limit) error {
	capped := false
	for _, l := range limits {
		capped = capped || l.HardUSD > 0 || l.SoftUSD > 0
	}
	if !capped {
		return nil
	}
	for _, o := range c.Options {
		if o.Unpriced {
			return fmt.Errorf("%w: the model has no price, so a USD budget cannot bound "+
				"it; add it to the price table", ErrBudgetExceeded)
		}
	}
	return nil
}

// errUnloaded means a window was dropped between its load and the admission (a
// window rolled over and a sweep ran): load again.
var errUnloaded = errors.New("finops: budget window not loaded")

// applicable returns the tenant's limits and the session's own.
func applicable(tenant, session []Limit) []Limit {
	out := make([]Limit, 0, len(tenant)+len(session))
	out = append(out, tenant...)
	for _, l := range session {
		l.Scope = ScopeSession
		out = append(out, l)
	}
	return out
}

func keyOf(tenant, session string, l Limit, now time.Time) windowKey {
	k := windowKey{tenant: tenant, window: l.Window, start: windowStart(l.Window, now).Unix()}
	if l.Window == WindowTotal {
		k.start = 0
	}
	if l.Scope == ScopeSession {
		k.session = session
	}
	return k
}

// admit decides and reserves, under b.mu. Every window of keys is loaded.
func (b *Budgets) admit(c Claim, limits []Limit, keys []windowKey,
	now time.Time) (*Reservation, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	states := make([]*windowState, len(keys))
	for i, k := range keys {
		states[i] = b.windows[k]
		if states[i] == nil || !states[i].loaded {
			return nil, errUnloaded
		}
	}

	choice, soft, err := choose(c, limits, states)
	if err != nil {
		b.count(c.Tenant).Refused++
		return nil, err
	}
	if soft {
		b.count(c.Tenant).Degraded++
	}

	r := &Reservation{Choice: choice, Soft: soft, Limited: true, b: b, cost: c.Options[choice]}
	for _, st := range states {
		if slices.Contains(r.held, st) {
			continue // two limits on one window reserve once
		}
		st.reserved.USD += r.cost.USD
		st.reserved.Tokens += r.cost.Tokens
		st.holders++
		st.lastUsed = now
		r.held = append(r.held, st)
	}
	b.sweepLocked(now)
	return r, nil
}

// choose picks the option to admit, as Reserve documents, and reports whether a
// soft cap degraded it.
func choose(c Claim, limits []Limit, states []*windowState) (int, bool, error) {
	n := c.Normal
	for i := 0; i <= n; i++ {
		if fitsAll(limits, states, c.Options[i], true) {
			return i, false, nil
		}
	}
	hardErr := fitsHard(limits, states, c.Options[n])
	if hardErr != nil && fitsAll(limits, states, c.Options[n], false) {
		return 0, false, hardErr // no soft cap is passed: a hard one refuses
	}
	for i := n + 1; i < len(c.Options); i++ {
		if fitsAll(limits, states, c.Options[i], true) {
			return i, true, nil
		}
	}
	for i := len(c.Options) - 1; i >= n; i-- {
		if fitsHard(limits, states, c.Options[i]) == nil {
			return i, true, nil
		}
	}
	return 0, false, hardErr
}

// fitsAll reports whether cost fits under every soft cap of limits and, with
// hard, every hard cap.
func fitsAll(limits []Limit, states []*windowState, cost Cost, hard bool) bool {
	if hard && fitsHard(limits, states, cost) != nil {
		return false
	}
	for i, l := range limits {
		st := states[i]
		if l.SoftUSD > 0 && st.spent.USD+st.reserved.USD+cost.USD > l.SoftUSD {
			return false
		}
		if l.SoftTokens > 0 && st.spent.Tokens+st.reserved.Tokens+cost.Tokens > l.SoftTokens {
			return false
		}
	}
	return true
}

// fitsHard returns the LimitError of the first hard cap cost does not fit under.
func fitsHard(limits []Limit, states []*windowState, cost Cost) error {
	for i, l := range limits {
		st := states[i]
		overUSD := l.HardUSD > 0 && st.spent.USD+st.reserved.USD+cost.USD > l.HardUSD
		overTokens := l.HardTokens > 0 &&
			st.spent.Tokens+st.reserved.Tokens+cost.Tokens > l.HardTokens
		if overUSD || overTokens {
			return &LimitError{Limit: l, Spent: st.spent, Reserved: st.reserved, Need: cost}
		}
	}
	return nil
}

// Release gives back what r reserved. Call it once the call's ledger entry is
// recorded (its cost then counts as spent) or once it is known that the call was
// never made. Later calls do nothing; a nil r does nothing.
func (r *Reservation) Release() {
	if r == nil || r.b == nil {
		return
	}
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if r.freed {
		return
	}
	r.freed = true
	for _, st := range r.held {
		st.reserved.USD -= r.cost.USD
		st.reserved.Tokens -= r.cost.Tokens
		st.holders--
	}
}

func (b *Budgets) count(tenant string) *BudgetCounters {
	c, ok := b.counters[tenant]
	if !ok {
		c = new(BudgetCounters)
		b.counters[tenant] = c
	}
	return c
}

// Counters returns, per tenant, how many admissions a limit refused or degraded
// since the process started.
func (b *Budgets) Counters() map[string]BudgetCounters {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]BudgetCounters, len(b.counters))
	for t, c := range b.counters {
		out[t] = *c
	}
	return out
}

// observe adds a booked entry to the windows it falls in that are loaded; the
// others read it from the ledger when they load. The ledger calls it with the
// entry's tenant lock held for reading, so no load of the tenant runs meanwhile.
func (b *Budgets) observe(e Entry) {
	cost := Cost{USD: e.CostUSD, Tokens: int64(e.Tokens.Total())}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, w := range []Window{WindowDay, WindowMonth, WindowTotal} {
		for _, session := range []string{"", e.Session} {
			k := keyOf(e.Tenant, session, Limit{Window: w, Scope: scopeOf(session)}, e.Time)
			if st := b.windows[k]; st != nil && st.loaded {
				st.spent.USD += cost.USD
				st.spent.Tokens += cost.Tokens
			}
		}
	}
}

func scopeOf(session string) Scope {
	if session == "" {
		return ScopeTenant
	}
	return ScopeSession
}

// sweepLocked drops, now and then, windows that nothing holds and that are past
// or unused: they load again from the ledger when needed. b.mu must be held.
func (b *Budgets) sweepLocked(now time.Time) {
	b.admitted++
	if b.admitted < sweepEvery {
		return
	}
	b.admitted = 0
	for k, st := range b.windows {
		current := keyOf(k.tenant, k.session, Limit{Window: k.window}, now).start == k.start
		if st.holders == 0 && (!current || now.Sub(st.lastUsed) > idleWindow) {
			delete(b.windows, k)
		}
	}
}
