package finops

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// load makes sure every window of keys (all of one tenant) knows what the ledger
// says was spent in it. It reads the ledger with the tenant's entries held still,
// so an entry booked meanwhile is counted by the load or by observe, never both.
func (b *Budgets) load(ctx context.Context, tenant string, keys []windowKey) error {
	if b.allLoaded(keys) {
		return nil
	}
	return b.ledger.exclusive(tenant, func() error {
		var tenantWide, perSession []windowKey
		b.mu.Lock()
		for _, k := range keys {
			st := b.windows[k]
			if st == nil {
				st = &windowState{lastUsed: b.now()}
				b.windows[k] = st
			}
			if st.loaded {
				continue
			}
			if k.session == "" {
				tenantWide = append(tenantWide, k)
			} else {
				perSession = append(perSession, k)
			}
		}
		b.mu.Unlock()

		spent := make(map[windowKey]Cost)
		if err := b.sum(ctx, Query{Tenant: tenant}, tenantWide, spent); err != nil {
			return err
		}
		if len(perSession) > 0 {
			q := Query{Tenant: tenant, Session: perSession[0].session}
			if err := b.sum(ctx, q, perSession, spent); err != nil {
				return err
			}
		}

		b.mu.Lock()
		defer b.mu.Unlock()
		for _, k := range append(tenantWide, perSession...) {
			st := b.windows[k]
			st.spent, st.loaded = spent[k], true
		}
		return nil
	})
}

func (b *Budgets) allLoaded(keys []windowKey) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range keys {
		if st := b.windows[k]; st == nil || !st.loaded {
			return false
		}
	}
	return true
}

// sum adds to spent, for each of keys, the entries q selects from the key's
// window start on. The scan starts at the earliest window.
func (b *Budgets) sum(ctx context.Context, q Query, keys []windowKey,
	spent map[windowKey]Cost) error {
	if len(keys) == 0 {
		return nil
	}
	earliest := keys[0].start
	for _, k := range keys {
		earliest = min(earliest, k.start)
	}
	if earliest > 0 && q.Session == "" {
		q.From = time.Unix(earliest, 0)
	}
	return b.ledger.Scan(ctx, q, func(e Entry) error {
		at := e.Time.Unix()
		for _, k := range keys {
			if k.session != "" && k.session != e.Session || at < k.start {
				continue
			}
			c := spent[k]
			c.USD += e.CostUSD
			c.Tokens += int64(e.Tokens.Total())
			spent[k] = c
		}
		return nil
	})
}

// Standing is a limit with what its current window has spent and reserved.
type Standing struct {
	Limit
	// Session is the session the standing is of, for a session limit.
	Session string `json:"session,omitempty"`
	// WindowStart is when the current window began (zero for WindowTotal).
	WindowStart time.Time `json:"window_start"`
	SpentUSD    float64   `json:"spent_usd"`
	SpentTokens int64     `json:"spent_tokens"`
	// ReservedUSD and ReservedTokens are held by calls in flight.
	ReservedUSD    float64 `json:"reserved_usd"`
	ReservedTokens int64   `json:"reserved_tokens"`
}

// Standings returns the tenant's limits with their current windows: its tenant
// limits, and, when session is not empty, its session limits as they stand for
// that session.
func (b *Budgets) Standings(ctx context.Context, tenant, session string) ([]Standing, error) {
	limits, err := b.Limits(ctx, tenant)
	if err != nil {
		return nil, err
	}
	now := b.now()
	var keep []Limit
	var keys []windowKey
	for _, l := range limits {
		if l.Scope == ScopeSession && session == "" {
			continue
		}
		keep = append(keep, l)
		keys = append(keys, keyOf(tenant, session, l, now))
	}
	if err := b.load(ctx, tenant, keys); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Standing, len(keep))
	for i, l := range keep {
		st := b.windows[keys[i]]
		out[i] = Standing{Limit: l, Session: keys[i].session,
			SpentUSD: round(st.spent.USD), SpentTokens: st.spent.Tokens,
			ReservedUSD: round(st.reserved.USD), ReservedTokens: st.reserved.Tokens}
		if keys[i].start > 0 {
			out[i].WindowStart = time.Unix(keys[i].start, 0).UTC()
		}
	}
	return out, nil
}

func jsonMarshal(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("finops: encode: %w", err)
	}
	return data, nil
}
