package finops

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stated-dev/stated/storage"
)

// MaxGroups bounds the groups of one report.
const MaxGroups = 100000

// Query selects ledger entries. The zero value selects every entry.
type Query struct {
	// Tenant keeps the entries of one tenant; empty keeps every tenant's.
	Tenant string
	// Session keeps the entries of one session; empty keeps every session's.
	Session string
	// From and To keep the entries with From <= Time < To; a zero bound is open.
	From, To time.Time
}

func (q Query) keeps(e *Entry) bool {
	return (q.Tenant == "" || e.Tenant == q.Tenant) &&
		(q.Session == "" || e.Session == q.Session) &&
		(q.From.IsZero() || !e.Time.Before(q.From)) &&
		(q.To.IsZero() || e.Time.Before(q.To))
}

// Scan calls fn with every entry q selects: for one session in seq order, else in
// time order per tenant, tenants in name order. It stops at fn's first error and
// returns it.
func (l *Ledger) Scan(ctx context.Context, q Query, fn func(Entry) error) error {
	if !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From) {
		return fmt.Errorf("%w: the range ends before it starts", ErrInvalidQuery)
	}
	if q.Session != "" {
		return l.scanPrefix(ctx, sessionPrefix(q.Session), "", q, fn)
	}
	if q.Tenant != "" {
		return l.scanTenant(ctx, q.Tenant, q, fn)
	}
	var tenants []string
	err := l.list(ctx, ledgerTenantPrefix, "", func(kv storage.KVEntry) (bool, error) {
		tenants = append(tenants, strings.TrimPrefix(kv.Key, ledgerTenantPrefix))
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, t := range tenants {
		if err := l.scanTenant(ctx, t, q, fn); err != nil {
			return err
		}
	}
	return nil
}

// scanTenant scans tenant's time index from q.From.
func (l *Ledger) scanTenant(ctx context.Context, tenant string, q Query,
	fn func(Entry) error) error {
	prefix := tenantTimePrefix(tenant)
	after := ""
	if !q.From.IsZero() && q.From.Unix() > 0 {
		// Every key of an entry at or after From sorts after this one.
		after = prefix + pad(uint64(q.From.UnixNano()), 19)
	}
	return l.scanPrefix(ctx, prefix, after, q, fn)
}

func (l *Ledger) scanPrefix(ctx context.Context, prefix, after string, q Query,
	fn func(Entry) error) error {
	byTime := strings.HasPrefix(prefix, ledgerTimePrefix)
	return l.list(ctx, prefix, after, func(kv storage.KVEntry) (bool, error) {
		var e Entry
		if err := json.Unmarshal(kv.Value, &e); err != nil {
			return false, fmt.Errorf("finops: ledger entry %s: %w", kv.Key, err)
		}
		if byTime && !q.To.IsZero() && !e.Time.Before(q.To) {
			return false, nil
		}
		if !q.keeps(&e) {
			return true, nil
		}
		if err := fn(e); err != nil {
			return false, err
		}
		return true, nil
	})
}

// GroupBy names how a report groups entries.
type GroupBy string

// The groupings of a report.
const (
	GroupNone    GroupBy = ""
	GroupModel   GroupBy = "model"
	GroupSession GroupBy = "session"
	GroupDay     GroupBy = "day" // UTC date, YYYY-MM-DD
	GroupTenant  GroupBy = "tenant"
	GroupPurpose GroupBy = "purpose"
)

// ParseGroupBy reads a grouping name; it returns ErrInvalidQuery for an unknown one.
func ParseGroupBy(s string) (GroupBy, error) {
	switch g := GroupBy(s); g {
	case GroupNone, GroupModel, GroupSession, GroupDay, GroupTenant, GroupPurpose:
		return g, nil
	}
	return "", fmt.Errorf("%w: group_by %.40q: want model, session, day, tenant or purpose",
		ErrInvalidQuery, s)
}

func (g GroupBy) key(e *Entry) string {
	switch g {
	case GroupModel:
		return e.Model
	case GroupSession:
		return e.Session
	case GroupDay:
		return e.Time.UTC().Format(time.DateOnly)
	case GroupTenant:
		return e.Tenant
	case GroupPurpose:
		return string(e.Purpose)
	}
	return ""
}

// Totals sums entries.
type Totals struct {
	Calls int64 `json:"calls"`
	// EstimatedCalls counts the calls whose usage the server estimated.
	EstimatedCalls     int64   `json:"estimated_calls"`
	InputTokens        int64   `json:"input_tokens"`
	CacheWrite5mTokens int64   `json:"cache_write_5m_tokens"`
	CacheWrite1hTokens int64   `json:"cache_write_1h_tokens"`
	CacheReadTokens    int64   `json:"cache_read_tokens"`
	OutputTokens       int64   `json:"output_tokens"`
	CostUSD            float64 `json:"cost_usd"`
	NaiveCostUSD       float64 `json:"naive_cost_usd"`
	// SavingsUSD is the savings by lever; they add up to NaiveCostUSD - CostUSD.
	SavingsUSD map[Lever]float64 `json:"savings_usd"`
	// CacheReadShare is the share of prompt tokens read from the cache.
	CacheReadShare float64 `json:"cache_read_share"`
}

// Add adds e to t.
func (t *Totals) Add(e *Entry) {
	t.Calls++
	if e.Estimated {
		t.EstimatedCalls++
	}
	t.InputTokens += int64(e.Tokens.Input)
	t.CacheWrite5mTokens += int64(e.Tokens.CacheWrite5m)
	t.CacheWrite1hTokens += int64(e.Tokens.CacheWrite1h)
	t.CacheReadTokens += int64(e.Tokens.CacheRead)
	t.OutputTokens += int64(e.Tokens.Output)
	t.CostUSD += e.CostUSD
	t.NaiveCostUSD += e.NaiveCostUSD
	if t.SavingsUSD == nil {
		t.SavingsUSD = make(map[Lever]float64)
	}
	for lv, usd := range e.SavingsUSD {
		t.SavingsUSD[lv] += usd
	}
	if prompt := t.InputTokens + t.CacheWrite5mTokens + t.CacheWrite1hTokens +
		t.CacheReadTokens; prompt > 0 {
		t.CacheReadShare = float64(t.CacheReadTokens) / float64(prompt)
	}
}

// Group is the totals of the entries that share a key.
type Group struct {
	Key string `json:"key"`
	Totals
}

// Report is the totals of the entries a query selected, and their groups.
type Report struct {
	Tenant  string     `json:"tenant,omitempty"`
	Session string     `json:"session,omitempty"`
	From    *time.Time `json:"from,omitempty"`
	To      *time.Time `json:"to,omitempty"`
	GroupBy GroupBy    `json:"group_by,omitempty"`
	Total   Totals     `json:"total"`
	// Groups are by date for GroupDay, else by cost, highest first. Empty
	// without a grouping.
	Groups []Group `json:"groups"`
}

// Report sums the entries q selects, grouped by by. It returns ErrInvalidQuery
// for a bad query and ErrQueryTooLarge past MaxGroups groups.
func (l *Ledger) Report(ctx context.Context, q Query, by GroupBy) (*Report, error) {
	if _, err := ParseGroupBy(string(by)); err != nil {
		return nil, err
	}
	r := &Report{Tenant: q.Tenant, Session: q.Session, GroupBy: by,
		Total: Totals{SavingsUSD: map[Lever]float64{}}, Groups: []Group{}}
	if !q.From.IsZero() {
		from := q.From.UTC()
		r.From = &from
	}
	if !q.To.IsZero() {
		to := q.To.UTC()
		r.To = &to
	}
	groups := make(map[string]*Totals)
	err := l.Scan(ctx, q, func(e Entry) error {
		r.Total.Add(&e)
		if by == GroupNone {
			return nil
		}
		k := by.key(&e)
		g, ok := groups[k]
		if !ok {
			if len(groups) == MaxGroups {
				return fmt.Errorf("%w: over %d groups", ErrQueryTooLarge, MaxGroups)
			}
			g = new(Totals)
			groups[k] = g
		}
		g.Add(&e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for k, t := range groups {
		r.Groups = append(r.Groups, Group{Key: k, Totals: *t})
	}
	sortGroups(r.Groups, by)
	return r, nil
}

func sortGroups(groups []Group, by GroupBy) {
	slices.SortFunc(groups, func(a, b Group) int {
		if by != GroupDay && a.CostUSD != b.CostUSD {
			if a.CostUSD > b.CostUSD {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Key, b.Key)
	})
}

// WriteCSV writes r as CSV: a header, one row per group (kind "group") and a last
// row of the totals (kind "total"). Savings have a column per lever, the known
// levers first.
func (r *Report) WriteCSV(w io.Writer) error {
	levers := r.levers()
	header := []string{"kind", "key", "calls", "estimated_calls", "input_tokens",
		"cache_write_5m_tokens", "cache_write_1h_tokens", "cache_read_tokens", "output_tokens",
		"cost_usd", "naive_cost_usd", "cache_read_share"}
	for _, lv := range levers {
		header = append(header, "savings_usd_"+string(lv))
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	for _, g := range r.Groups {
		if err := cw.Write(csvRow("group", g.Key, &g.Totals, levers)); err != nil {
			return err
		}
	}
	if err := cw.Write(csvRow("total", "", &r.Total, levers)); err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

// levers returns the levers of the report's savings: the known ones, then any
// other in name order.
func (r *Report) levers() []Lever {
	known := []Lever{LeverCaching, LeverRollup, LeverRationing, LeverRouting,
		LeverSemanticCache}
	var other []Lever
	for lv := range maps.Keys(r.Total.SavingsUSD) {
		if !slices.Contains(known, lv) {
			other = append(other, lv)
		}
	}
	slices.Sort(other)
	return append(known, other...)
}

func csvRow(kind, key string, t *Totals, levers []Lever) []string {
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	row := []string{kind, csvSafe(key), i(t.Calls), i(t.EstimatedCalls), i(t.InputTokens),
		i(t.CacheWrite5mTokens), i(t.CacheWrite1hTokens), i(t.CacheReadTokens),
		i(t.OutputTokens), f(t.CostUSD), f(t.NaiveCostUSD), f(t.CacheReadShare)}
	for _, lv := range levers {
		row = append(row, f(t.SavingsUSD[lv]))
	}
	return row
}

// csvSafe keeps a spreadsheet from reading a key (a model name a client chose) as
// a formula.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
