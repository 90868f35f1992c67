package session

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/storage"
)

// Config configures a Manager. The zero value of each field means its default.
type Config struct {
	// Model is the model of a session that names none. Required.
	Model string
	// MaxTokens is the answer length of a session that sets none. Default 4096.
	MaxTokens int
	// Limits bound what clients may send. Zero fields take DefaultLimits.
	Limits Limits
	// AnswerTimeout bounds one provider call. Default 10 minutes.
	AnswerTimeout time.Duration
	// IdleTimeout is how long a session with no subscribers and no answer running
	// stays in memory. Default 10 minutes.
	IdleTimeout time.Duration
	// Logger receives the manager's logs. Default slog.Default().
	Logger *slog.Logger
	// Cost prices the usage of an answer in USD. Nil books every answer at no cost.
	Cost func(model string, u providers.Usage) (float64, error)
	// Ledger books every provider call of the sessions; nil books none.
	Ledger *finops.Ledger
	// Budgets admits every answer against the tenant's and the session's limits;
	// nil admits every answer.
	Budgets *finops.Budgets
	// Guard pauses sessions that run away. Zero fields take DefaultGuard.
	Guard Guard
	// Context is the rollup and rationing policy of sessions that set none; its
	// zero fields take DefaultContextPolicy.
	Context ContextPolicy
	// Presets stores the tenants' presets. Nil: sessions cannot be opened by
	// preset and PutPreset refuses.
	Presets storage.KV
	// ContextWindows overrides the context window of models, by model ID prefix
	// (the longest matching prefix wins), in tokens. Models it does not name use
	// the built-in table.
	ContextWindows map[string]int
	// CacheKeyRPM is the request rate one OpenAI prompt_cache_key carries before a
	// preset's key is split into shards. Default 15, OpenAI's figure; -1 never
	// splits.
	CacheKeyRPM int
	// Now is the session layer's clock: event times and the time between turns
	// that cache lifetimes are chosen from. Default time.Now; a simulation passes
	// the provider simulator's clock.
	Now func() time.Time
	// Ownership decides which node of a cluster serves each session (owner.go).
	// Nil: this node serves every session, as a single node does.
	Ownership Ownership
	// ObserveAdded receives, once per answer, the time the server added before the
	// provider call: from the turn's Input.Received to the first attempt's request
	// written upstream (Timing.AddedMS). Nil records nothing.
	ObserveAdded func(time.Duration)
	// ObserveCommitWait receives, for each delta whose provider bytes were read
	// (Delta.At) before the durable append of the turn it answers returned, the
	// time between the two: what the delta waited for its turn to be durable, by
	// design (overlap.go). Nil records nothing.
	ObserveCommitWait func(time.Duration)
}

func (c *Config) setDefaults() {
	if c.MaxTokens == 0 {
		c.MaxTokens = 4096
	}
	d := DefaultLimits()
	l := &c.Limits
	for _, f := range []struct {
		v *int
		d int
	}{
		{&l.MaxTurnBytes, d.MaxTurnBytes}, {&l.MaxSystemBytes, d.MaxSystemBytes},
		{&l.MaxTools, d.MaxTools}, {&l.MaxToolBytes, d.MaxToolBytes},
		{&l.MaxTokens, d.MaxTokens}, {&l.MaxIDBytes, d.MaxIDBytes},
	} {
		if *f.v == 0 {
			*f.v = f.d
		}
	}
	if c.AnswerTimeout == 0 {
		c.AnswerTimeout = 10 * time.Minute
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 10 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Guard.setDefaults()
	c.Context = c.Context.over(DefaultContextPolicy())
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.CacheKeyRPM == 0 {
		c.CacheKeyRPM = keyRPM
	}
}

// Manager owns the live sessions of a node: it opens and loads them, runs their
// answers on goroutines it owns, and evicts idle ones from memory.
type Manager struct {
	cfg      Config
	store    storage.Store
	provider providers.Provider
	log      *slog.Logger

	// mu guards live, loading and shut.
	mu      sync.Mutex
	live    map[string]*Session
	loading map[string]chan struct{} // closed when the load of that ID ends
	shut    bool

	answers     sync.WaitGroup // running answers
	answerCtx   context.Context
	stopAnswers context.CancelFunc
	stopJanitor chan struct{}
	janitorDone chan struct{}
	closeOnce   sync.Once
	unpriced    sync.Map // models already warned about

	traffic trafficTable // requests by shared prefix, for TTLs and cache keys
	rollups atomic.Int64 // background rollups running
	turns   atomic.Int64 // user turns and tool results accepted since start
	rates   sync.Map     // model -> rates
	presets sync.Map     // KV key of a preset version -> Preset (versions never change)
}

// NewManager returns a manager over store and provider. It starts a janitor
// goroutine that Close stops.
func NewManager(cfg Config, store storage.Store, provider providers.Provider) (*Manager, error) {
	if cfg.Model == "" {
		return nil, errors.New("session: config has no default model")
	}
	if err := cfg.Guard.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		cfg: cfg, store: store, provider: provider, log: cfg.Logger,
		live: make(map[string]*Session), loading: make(map[string]chan struct{}),
		answerCtx: ctx, stopAnswers: cancel,
		stopJanitor: make(chan struct{}), janitorDone: make(chan struct{}),
	}
	go m.janitor()
	return m, nil
}

// Open creates a session for tenant with settings s and returns it live. Errors:
// ErrInvalid for bad settings, ErrClosed, or a storage error.
func (m *Manager) Open(ctx context.Context, tenant string, st Settings) (*Session, error) {
	if m.closing() {
		return nil, ErrClosed
	}
	if err := m.applyPreset(ctx, tenant, &st); err != nil {
		return nil, err
	}
	if err := m.normalizeSettings(&st); err != nil {
		return nil, err
	}
	data, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("session: encode settings: %w", err)
	}
	id, err := newID()
	if err != nil {
		return nil, err
	}
	meta := storage.Meta{ID: id, Tenant: tenant, Epoch: 1, Data: data}
	if err := m.store.Create(ctx, meta); err != nil {
		return nil, fmt.Errorf("session: create: %w", err)
	}
	if err := m.acquire(ctx, id); err != nil {
		return nil, fmt.Errorf("session: create: %w", err)
	}
	s := m.newSession(meta, st)
	m.mu.Lock()
	m.live[id] = s
	m.mu.Unlock()
	m.log.Debug("session opened", "session", id, "tenant", tenant, "model", st.Model)
	return s, nil
}

// Get returns the live session id of tenant, loading it from the store if it is not
// in memory. Concurrent calls for one ID load it once. A session of another tenant
// yields ErrNotFound.
func (m *Manager) Get(ctx context.Context, tenant, id string) (*Session, error) {
	for {
		m.mu.Lock()
		if m.shut {
			m.mu.Unlock()
			return nil, ErrClosed
		}
		if s, ok := m.live[id]; ok {
			m.mu.Unlock()
			if s.tenant != tenant {
				// Read the store as for a session that is not live, so that the
				// time taken does not tell another tenant's session from none.
				m.store.Meta(ctx, id)
				return nil, ErrNotFound
			}
			return s, nil
		}
		wait, busy := m.loading[id]
		if !busy {
			done := make(chan struct{})
			m.loading[id] = done
			m.mu.Unlock()
			return m.load(ctx, tenant, id, done)
		}
		m.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Owner returns the tenant of session id, or ErrNotFound. It reads the store's
// meta record even for a live session, so that asking about another tenant's
// session takes the path of asking about one that does not exist.
func (m *Manager) Owner(ctx context.Context, id string) (string, error) {
	meta, err := m.store.Meta(ctx, id)
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidID) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("session: owner of %s: %w", id, err)
	}
	return meta.Tenant, nil
}

// load reads a session from the store and makes it live. done is closed when the
// load ends, successfully or not.
func (m *Manager) load(ctx context.Context, tenant, id string, done chan struct{}) (
	*Session, error) {
	defer func() {
		m.mu.Lock()
		delete(m.loading, id)
		m.mu.Unlock()
		close(done)
	}()

	meta, err := m.store.Meta(ctx, id)
	if errors.Is(err, storage.ErrNotFound) || err == nil && meta.Tenant != tenant {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("session: load %s: %w", id, err)
	}
	var st Settings
	if err := json.Unmarshal(meta.Data, &st); err != nil {
		return nil, fmt.Errorf("session: decode settings of %s: %w", id, err)
	}
	if err := m.acquire(ctx, id); err != nil {
		return nil, fmt.Errorf("session: load %s: %w", id, err)
	}
	recs, err := m.store.Read(ctx, id, 0, 0)
	if err != nil {
		m.release(id)
		return nil, fmt.Errorf("session: load %s: %w", id, err)
	}
	s := m.newSession(meta, st)
	if err := s.replay(recs); err != nil {
		m.release(id)
		return nil, err
	}
	s.restoreGuard()
	s.seedGaps()

	m.mu.Lock()
	m.live[id] = s
	m.mu.Unlock()
	s.answerInterrupted()
	return s, nil
}

func (m *Manager) newSession(meta storage.Meta, st Settings) *Session {
	return &Session{
		id: meta.ID, tenant: meta.Tenant, epoch: meta.Epoch, settings: st, mgr: m,
		turnIDs: make(map[string]uint64), pending: make(map[string]bool),
		subs: make(map[Subscriber]struct{}), lastUsed: time.Now(),
		settingsTokens: settingsTokens(&st), prefix: prefixDigest(st.Model, &st),
	}
}

// normalizeSettings fills the defaults of st, the context policy's included, and
// checks it against the limits and the models the provider serves. Errors:
// ErrInvalid.
func (m *Manager) normalizeSettings(st *Settings) error {
	if err := st.normalize(m.cfg.Limits, m.cfg.Model, m.cfg.MaxTokens); err != nil {
		return err
	}
	st.Context = st.Context.withDefaults(m.cfg.Context, st.Model)
	if err := st.Context.check(); err != nil {
		return err
	}
	if mc, ok := m.provider.(providers.ModelChecker); ok && !mc.Serves(st.Model) {
		return fmt.Errorf("%w: model %q is not served here", ErrInvalid, st.Model)
	}
	return m.checkPolicyModels(st)
}

// now reads the session layer's clock.
func (m *Manager) now() time.Time { return m.cfg.Now() }

// goAnswer runs f on a goroutine the manager owns, unless shutdown has begun.
func (m *Manager) goAnswer(f func()) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.shut {
		return false
	}
	m.answers.Add(1)
	go func() {
		defer m.answers.Done()
		f()
	}()
	return true
}

func (m *Manager) closing() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.shut
}

// Close stops taking new sessions and turns, waits for running answers to finish
// and be stored, and stops the janitor. If ctx ends first, running answers are
// cancelled and stored as incomplete before Close returns. The store is the
// caller's to close afterwards. Close is safe to call more than once.
func (m *Manager) Close(ctx context.Context) error {
	var err error
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.shut = true
		m.mu.Unlock()
		close(m.stopJanitor)

		done := make(chan struct{})
		go func() { m.answers.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			m.stopAnswers()
			<-done
			err = fmt.Errorf("session: answers cut short by shutdown: %w", ctx.Err())
		}
		m.stopAnswers()
		<-m.janitorDone
	})
	return err
}

// janitor evicts sessions that have been idle past the idle timeout.
func (m *Manager) janitor() {
	defer close(m.janitorDone)
	tick := time.NewTicker(janitorTick(m.cfg.IdleTimeout))
	defer tick.Stop()
	for {
		select {
		case <-m.stopJanitor:
			return
		case <-tick.C:
			m.evictIdle(time.Now().Add(-m.cfg.IdleTimeout))
		}
	}
}

// janitorTick is how often the janitor looks for idle sessions: a quarter of the
// idle timeout, within 100ms to 1 minute, so a session is evicted at most one
// tick after its timeout.
func janitorTick(idle time.Duration) time.Duration {
	return min(max(idle/4, 100*time.Millisecond), time.Minute)
}

// evictIdle drops from memory the sessions unused since before cutoff, releases
// their ownership and returns how many. They are loaded again from the store
// when next asked for.
func (m *Manager) evictIdle(cutoff time.Time) int {
	ids := m.takeIdle(cutoff)
	m.release(ids...)
	return len(ids)
}

// takeIdle removes the sessions unused since before cutoff from the live ones
// and returns their IDs.
//
// A session's lock comes before the manager's (a session asks the manager, for
// closing or goAnswer, with its lock held), so the live sessions are listed
// first and each is then checked and removed under its own lock: holding m.mu
// while taking a session's lock deadlocked against a turn being admitted.
func (m *Manager) takeIdle(cutoff time.Time) []string {
	m.mu.Lock()
	live := make([]*Session, 0, len(m.live))
	for _, s := range m.live {
		live = append(live, s)
	}
	m.mu.Unlock()

	var ids []string
	for _, s := range live {
		if m.takeIfIdle(s, cutoff) {
			ids = append(ids, s.id)
		}
	}
	return ids
}

// takeIfIdle removes s from the live sessions if it is still the one held for
// its ID and has been idle since before cutoff. It takes s.mu before m.mu, the
// order every session follows.
func (m *Manager) takeIfIdle(s *Session, cutoff time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if since, idle := s.idleSinceLocked(); !idle || !since.Before(cutoff) {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.live[s.id] != s {
		return false
	}
	delete(m.live, s.id)
	return true
}

// RollupsRunning returns the number of rollups whose summary is being written
// off the turns' critical path, or that an answer being stored may yet start. Once
// a client has an answer and this is 0, every rollup that answer led to is in the
// log.
func (m *Manager) RollupsRunning() int { return int(m.rollups.Load()) }

// deciding counts an answer being stored as a rollup that may start, until the
// function it returns is called.
func (m *Manager) deciding() func() {
	m.rollups.Add(1)
	return func() { m.rollups.Add(-1) }
}

// TurnsAccepted returns the number of user turns and tool results the sessions
// have accepted (stored) since the manager started; duplicates count once.
func (m *Manager) TurnsAccepted() int64 { return m.turns.Load() }

// observeAdded returns the time the server added before an answer's provider
// call, from received (the turn's last frame read) to the first request written
// upstream as t reports it, or to sent when no write was reported (a provider that
// is not HTTP, or a request that failed before it was written), and passes it to
// Config.ObserveAdded.
func (m *Manager) observeAdded(received, sent time.Time, t *providers.Trace) time.Duration {
	end := sent
	if wrote, ok := t.WroteRequest(); ok {
		end = wrote
	}
	d := end.Sub(received)
	if m.cfg.ObserveAdded != nil {
		m.cfg.ObserveAdded(d)
	}
	return d
}

// LiveSessions returns the number of sessions in memory.
func (m *Manager) LiveSessions() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.live)
}

// cost prices an answer. A model the price table does not know is booked at no
// cost, with one warning per model.
func (m *Manager) cost(model string, u providers.Usage) float64 {
	if m.cfg.Cost == nil {
		return 0
	}
	c, err := m.cfg.Cost(model, u)
	if err != nil {
		if _, warned := m.unpriced.LoadOrStore(model, true); !warned {
			m.log.Warn("answers of this model are not priced", "model", model, "err", err)
		}
		return 0
	}
	return c
}

// newID returns 128 random bits, printable: 26 characters of lower-case base32.
func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("session: random id: %w", err)
	}
	return idEncoding.EncodeToString(b[:]), nil
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
