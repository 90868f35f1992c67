package finops

// The ledger keeps one record per provider call in a storage.KV, under three
// kinds of keys (numbers zero-padded so that key order is numeric order):
//
//	ledger/s/<session>/<seq:20>/<purpose>              -> the entry (JSON)
//	ledger/t/<tenant>/<unix-nanos:19>/<session>/<seq:20>/<purpose> -> the entry again
//	ledger/tenant/<tenant>                             -> "" (the tenant has entries)
//	ledger/pending/<session>/<seq:20>                  -> a PendingCall (JSON)
//
// The first key is the entry's identity: a call is booked once per session, seq
// and purpose, so writing the same entry twice books it once. The second orders a
// tenant's entries by time, for reports and for loading what a budget window has
// spent. With a KV that can write several keys atomically (BadgerKV.Apply) the
// keys of one entry are written in one transaction, together with the removal of
// the call's pending mark.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stated-dev/stated/storage"
)

// Purpose says what a provider call was for.
type Purpose string

// The purposes of provider calls.
const (
	// PurposeTurn is an answer to a turn of the session; a retry is an answer of
	// its own, at its own seq.
	PurposeTurn Purpose = "turn"
	// PurposeRollup is the summary a rollup asks for; it is booked on the seq of
	// the rollup event it produced.
	PurposeRollup Purpose = "rollup"
	// PurposeSummary is any other summary the server asks for.
	PurposeSummary Purpose = "summary"
	// PurposeUnstored is an answer whose turn was never stored (its durable
	// append failed after the provider call had started): it is booked on the seq
	// the answer was admitted at, though the log holds no event there.
	PurposeUnstored Purpose = "unstored"
)

// Limits on ledger entries.
const (
	// MaxSessionLen is the longest session ID an entry may name.
	MaxSessionLen = 256
	// maxPurposeLen bounds a purpose.
	maxPurposeLen = 32
	// ledgerPage is how many keys one List of a scan reads.
	ledgerPage = 512
)

// Key prefixes of the ledger's keys.
const (
	ledgerSessionPrefix = "ledger/s/"
	ledgerTimePrefix    = "ledger/t/"
	ledgerTenantPrefix  = "ledger/tenant/"
	ledgerPendingPrefix = "ledger/pending/"
)

// Entry is the record of one provider call. Its identity is (Session, Seq,
// Purpose): recording it again changes nothing.
type Entry struct {
	Tenant  string `json:"tenant"`
	Session string `json:"session"`
	// Seq is the session event the call is booked on: the answer's seq for a
	// turn, the rollup event's for a rollup. At least 1.
	Seq     uint64    `json:"seq"`
	Purpose Purpose   `json:"purpose"`
	Time    time.Time `json:"time"`
	Model   string    `json:"model"`
	// Tokens is the usage the provider reported, or the estimate (Estimated)
	// when the stream ended before it did.
	Tokens Tokens `json:"tokens"`
	Booking
	// Estimated is true when the usage is the server's estimate: the counted
	// prompt as uncached input and the streamed output.
	Estimated bool `json:"estimated,omitempty"`
	// Status is how the call ended: complete, incomplete, aborted or failed.
	Status string `json:"status,omitempty"`
	// LatencyMS is from the request being sent to the answer being stored;
	// FirstTokenMS to the first piece of the answer (0: none came).
	LatencyMS    float64 `json:"latency_ms,omitempty"`
	FirstTokenMS float64 `json:"first_token_ms,omitempty"`
}

// PendingCall marks a provider call that has started and whose entry is not
// written yet. After a crash, the marks left say which calls to book from the
// session log (see Ledger.Pending).
type PendingCall struct {
	Tenant  string `json:"tenant"`
	Session string `json:"session"`
	Seq     uint64 `json:"seq"`
}

// Ledger is the durable record of provider calls, over a storage.KV. It is safe
// for concurrent use.
type Ledger struct {
	kv    storage.KV
	apply applier // kv's atomic batch; nil when kv has none
	log   *slog.Logger

	// locksMu guards locks: one lock per tenant, held for reading while an entry
	// of the tenant is written and its observers run, and for writing while a
	// budget loads what the tenant spent, so a load sees every entry exactly once.
	locksMu sync.Mutex
	locks   map[string]*sync.RWMutex

	// observersMu guards observers.
	observersMu sync.RWMutex
	observers   []func(Entry)

	tenantsSeen sync.Map // tenants whose ledger/tenant key this process wrote
}

// applier is the optional capability of a KV to write several keys atomically.
type applier interface {
	Apply(ctx context.Context, batch storage.KVBatch) error
}

// NewLedger returns the ledger kept in kv. A nil logger means slog.Default().
func NewLedger(kv storage.KV, log *slog.Logger) *Ledger {
	if log == nil {
		log = slog.Default()
	}
	l := &Ledger{kv: kv, log: log, locks: make(map[string]*sync.RWMutex)}
	l.apply, _ = kv.(applier)
	return l
}

// Observe registers fn to be called with every entry Record books, once per
// entry, after it is durable, on the goroutine that recorded it. fn must be quick
// and must not call the ledger.
func (l *Ledger) Observe(fn func(Entry)) {
	l.observersMu.Lock()
	defer l.observersMu.Unlock()
	l.observers = append(l.observers, fn)
}

// Record books e durably and clears the pending mark of its session and seq. An
// entry with the same session, seq and purpose booked before is kept as it was:
// Record then writes nothing and returns nil, so deriving an entry twice from the
// same event books it once. Errors: ErrInvalidEntry, or a storage error (nothing
// is booked; recording again is safe).
func (l *Ledger) Record(ctx context.Context, e Entry) error {
	if err := e.validate(); err != nil {
		return err
	}
	e.Time = e.Time.UTC()
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("finops: encode ledger entry: %w", err)
	}

	lock := l.tenantLock(e.Tenant)
	lock.RLock()
	defer lock.RUnlock()
	created, err := l.write(ctx, &e, data)
	if err != nil {
		return err
	}
	if created {
		l.observersMu.RLock()
		for _, fn := range l.observers {
			fn(e)
		}
		l.observersMu.RUnlock()
	}
	return nil
}

// write stores the keys of e and reports whether it booked e (false: booked
// before).
func (l *Ledger) write(ctx context.Context, e *Entry, data []byte) (bool, error) {
	batch := storage.KVBatch{
		Create: []storage.KVEntry{{Key: entryKey(e.Session, e.Seq, e.Purpose), Value: data}},
		Put:    []storage.KVEntry{{Key: timeKey(e), Value: data}},
		Delete: []string{pendingKey(e.Session, e.Seq)},
	}
	_, seen := l.tenantsSeen.Load(e.Tenant)
	if !seen {
		batch.Put = append(batch.Put, storage.KVEntry{Key: ledgerTenantPrefix + e.Tenant})
	}

	if l.apply == nil {
		return l.writeEach(ctx, e, batch)
	}
	err := l.apply.Apply(ctx, batch)
	switch {
	case errors.Is(err, storage.ErrRevisionConflict):
		// Booked before; a crash may have left the mark behind.
		return false, l.ClearPending(ctx, e.Session, e.Seq)
	case err != nil:
		return false, fmt.Errorf("finops: write ledger entry: %w", err)
	}
	l.tenantsSeen.Store(e.Tenant, true)
	return true, nil
}

// writeEach writes a batch key by key, for a KV without Apply. The entry key is
// created first; when it exists already, the time key is written again from the
// stored entry, which repairs a crash between the writes of an earlier Record.
func (l *Ledger) writeEach(ctx context.Context, e *Entry, batch storage.KVBatch) (bool,
	error) {
	created := true
	c := batch.Create[0]
	_, err := l.kv.CompareAndPut(ctx, c.Key, c.Value, 0)
	if errors.Is(err, storage.ErrRevisionConflict) {
		created = false
		stored, ok, gerr := l.Entry(ctx, e.Session, e.Seq, e.Purpose)
		if gerr != nil || !ok {
			return false, fmt.Errorf("finops: reread ledger entry: %w", gerr)
		}
		data, merr := json.Marshal(stored)
		if merr != nil {
			return false, fmt.Errorf("finops: encode ledger entry: %w", merr)
		}
		batch.Put[0] = storage.KVEntry{Key: timeKey(&stored), Value: data}
	} else if err != nil {
		return false, fmt.Errorf("finops: write ledger entry: %w", err)
	}
	for _, p := range batch.Put {
		if _, err := l.kv.Put(ctx, p.Key, p.Value); err != nil {
			return false, fmt.Errorf("finops: write ledger entry: %w", err)
		}
	}
	if err := l.ClearPending(ctx, e.Session, e.Seq); err != nil {
		return false, err
	}
	l.tenantsSeen.Store(e.Tenant, true)
	return created, nil
}

// MarkPending durably notes that the call p has started; Record of its entry
// clears the mark. Errors: ErrInvalidEntry, or a storage error.
func (l *Ledger) MarkPending(ctx context.Context, p PendingCall) error {
	if err := validIDs(p.Tenant, p.Session, p.Seq); err != nil {
		return err
	}
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("finops: encode pending call: %w", err)
	}
	if _, err := l.kv.Put(ctx, pendingKey(p.Session, p.Seq), data); err != nil {
		return fmt.Errorf("finops: mark pending call: %w", err)
	}
	return nil
}

// ClearPending removes the pending mark of a call that will book nothing (it was
// never made, or its answer was never stored).
func (l *Ledger) ClearPending(ctx context.Context, session string, seq uint64) error {
	if err := l.kv.Delete(ctx, pendingKey(session, seq)); err != nil {
		return fmt.Errorf("finops: clear pending call: %w", err)
	}
	return nil
}

// Pending returns the calls marked pending and not booked, in session and seq
// order: after a crash, the calls whose entry may be missing.
func (l *Ledger) Pending(ctx context.Context) ([]PendingCall, error) {
	var out []PendingCall
	err := l.list(ctx, ledgerPendingPrefix, "", func(kv storage.KVEntry) (bool, error) {
		var p PendingCall
		if err := json.Unmarshal(kv.Value, &p); err != nil {
			return false, fmt.Errorf("finops: pending call %s: %w", kv.Key, err)
		}
		out = append(out, p)
		return true, nil
	})
	return out, err
}

// Entry returns the entry booked for session, seq and purpose, or false.
func (l *Ledger) Entry(ctx context.Context, session string, seq uint64,
	purpose Purpose) (Entry, bool, error) {
	data, _, err := l.kv.Get(ctx, entryKey(session, seq, purpose))
	if errors.Is(err, storage.ErrKeyNotFound) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, fmt.Errorf("finops: read ledger entry: %w", err)
	}
	var e Entry
	if err := json.Unmarshal(data, &e); err != nil {
		return Entry{}, false, fmt.Errorf("finops: decode ledger entry: %w", err)
	}
	return e, true, nil
}

// tenantLock returns the lock of tenant's entries.
func (l *Ledger) tenantLock(tenant string) *sync.RWMutex {
	l.locksMu.Lock()
	defer l.locksMu.Unlock()
	lock, ok := l.locks[tenant]
	if !ok {
		lock = new(sync.RWMutex)
		l.locks[tenant] = lock
	}
	return lock
}

// exclusive runs fn while no entry of tenant is being booked.
func (l *Ledger) exclusive(tenant string, fn func() error) error {
	lock := l.tenantLock(tenant)
	lock.Lock()
	defer lock.Unlock()
	return fn()
}

// list calls fn for every KV entry under prefix after the key after, in key order,
// a page at a time, until fn returns false or an error.
func (l *Ledger) list(ctx context.Context, prefix, after string,
	fn func(storage.KVEntry) (bool, error)) error {
	for {
		page, err := l.kv.List(ctx, prefix, after, ledgerPage)
		if err != nil {
			return fmt.Errorf("finops: read ledger: %w", err)
		}
		for _, kv := range page {
			more, err := fn(kv)
			if err != nil || !more {
				return err
			}
		}
		if len(page) < ledgerPage {
			return nil
		}
		after = page[len(page)-1].Key
	}
}

// validate checks e against the rules of ErrInvalidEntry.
func (e *Entry) validate() error {
	if err := validIDs(e.Tenant, e.Session, e.Seq); err != nil {
		return err
	}
	switch {
	case !validPurpose(e.Purpose):
		return fmt.Errorf("%w: purpose %.40q", ErrInvalidEntry, e.Purpose)
	case e.Time.Year() < 2000 || e.Time.Year() > 2200:
		return fmt.Errorf("%w: time %s", ErrInvalidEntry, e.Time)
	case len(e.Model) > maxModelID:
		return fmt.Errorf("%w: model name over %d bytes", ErrInvalidEntry, maxModelID)
	case e.Tokens.Input < 0 || e.Tokens.CacheWrite5m < 0 || e.Tokens.CacheWrite1h < 0 ||
		e.Tokens.CacheRead < 0 || e.Tokens.Output < 0:
		return fmt.Errorf("%w: negative token count", ErrInvalidEntry)
	case !validUSD(e.CostUSD) || !validUSD(e.NaiveCostUSD):
		return fmt.Errorf("%w: cost %g, naive cost %g", ErrInvalidEntry, e.CostUSD,
			e.NaiveCostUSD)
	}
	for lv, usd := range e.SavingsUSD {
		if math.IsNaN(usd) || math.IsInf(usd, 0) || !validName(string(lv), maxPurposeLen) {
			return fmt.Errorf("%w: saving %.40q of %g", ErrInvalidEntry, lv, usd)
		}
	}
	return nil
}

func validIDs(tenant, session string, seq uint64) error {
	switch {
	case ValidTenant(tenant) != nil:
		return fmt.Errorf("%w: tenant %.80q", ErrInvalidEntry, tenant)
	case !validName(session, MaxSessionLen):
		return fmt.Errorf("%w: session %.80q", ErrInvalidEntry, session)
	case seq == 0:
		return fmt.Errorf("%w: seq 0", ErrInvalidEntry)
	}
	return nil
}

func validPurpose(p Purpose) bool {
	return validName(string(p), maxPurposeLen)
}

// validName reports whether s is 1 to limit bytes of letters, digits, '-', '_'
// and '.': nothing that could break a key's layout.
func validName(s string, limit int) bool {
	if s == "" || len(s) > limit {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}

func validUSD(v float64) bool {
	return v >= 0 && !math.IsInf(v, 0) && !math.IsNaN(v)
}

func entryKey(session string, seq uint64, purpose Purpose) string {
	return ledgerSessionPrefix + session + "/" + pad(seq, 20) + "/" + string(purpose)
}

func sessionPrefix(session string) string {
	return ledgerSessionPrefix + session + "/"
}

func timeKey(e *Entry) string {
	return tenantTimePrefix(e.Tenant) + pad(uint64(e.Time.UnixNano()), 19) + "/" + e.Session +
		"/" + pad(e.Seq, 20) + "/" + string(e.Purpose)
}

func tenantTimePrefix(tenant string) string {
	return ledgerTimePrefix + tenant + "/"
}

func pendingKey(session string, seq uint64) string {
	return ledgerPendingPrefix + session + "/" + pad(seq, 20)
}

// pad writes n in decimal, zero-padded to width digits.
func pad(n uint64, width int) string {
	s := strconv.FormatUint(n, 10)
	if len(s) >= width {
		return s
	}
	return strings.Repeat("0", width-len(s)) + s
}
