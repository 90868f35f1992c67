package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/session"
)

// Options configure a replay.
type Options struct {
	Servers     []string // WebSocket URLs; the client moves on when one goes away
	System      string   // system prompt of conversations that have none
	Model       string   // model of the sessions; empty: the server's default
	MaxTokens   int      // max_tokens of the sessions; 0: the server's default
	Concurrency int      // conversations played at once; default 1
	// Retries is how many times an answer that failed or was cut is asked for
	// again before the turn counts as an error. Default 2.
	Retries  int
	Progress io.Writer   // one line per conversation; nil: quiet
	Header   http.Header // sent with every request to the server (authorization)
	// OpenFrames sends the system prompt and tools in every session's open frame
	// instead of registering them as presets.
	OpenFrames bool

	// Baselines lists the stateless clients replayed beside stated: BaselineNaive,
	// BaselineAuto or both. They need ProviderURL.
	Baselines []string
	// Provider is the wire format of ProviderURL: "anthropic" (default) or
	// "openai"; ProviderURL is its API root (the simulator's address for
	// anthropic, with /v1 for openai). APIKey is the baselines' key, suffixed
	// with the baseline's name, so no baseline shares a cache with stated or
	// with the other. Default "replay-baseline".
	Provider    string
	ProviderURL string
	APIKey      string
	// ThinkTime is the pause between a conversation's turns, in the simulator's
	// time: after every step the replay advances the manual clock of the
	// simulator at ProviderURL by it (POST /_sim/clock). Turns of all
	// conversations go in lockstep, so each conversation sees exactly this gap.
	ThinkTime time.Duration
	// Prices price the baselines' usage. Default finops.DefaultPrices().
	Prices *finops.PriceTable
}

// Percentiles of a distribution, in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Result is what a replay measured: stated's side, and each baseline's with the
// same fields. Token counts are the provider-reported usage summed over every
// answer.
type Result struct {
	Conversations int `json:"conversations"`
	// Turns is the number of answers received (assistant messages answered).
	Turns  int `json:"turns"`
	Errors int `json:"errors"`
	// Diverged counts places where the answer did not take the recorded path (tool
	// calls where the recording had none, or the reverse), so recorded tool
	// results could not be sent as they were.
	Diverged int `json:"diverged"`
	// ClientBytesSent is what the side's clients sent: WebSocket payload for
	// stated, request bodies for a baseline.
	ClientBytesSent int64 `json:"client_bytes_sent"`
	// StatelessClientBytes is what a stateless client would have sent for the same
	// requests: full OpenAI chat request bodies with the whole history each time.
	StatelessClientBytes int64 `json:"stateless_client_bytes"`
	// PresetBytes is what registering the presets sent, once per run.
	PresetBytes int64 `json:"preset_bytes,omitempty"`

	InputTokens       int     `json:"input_tokens"` // all prompt tokens
	CachedInputTokens int     `json:"cached_input_tokens"`
	CacheWriteTokens  int     `json:"cache_write_tokens"`
	UncachedTokens    int     `json:"uncached_input_tokens"`
	OutputTokens      int     `json:"output_tokens"`
	CachedShare       float64 `json:"cached_share"`
	// CostUSD is everything the side paid, the summaries of rollups included.
	CostUSD float64 `json:"cost_usd"`

	// Rollups counts the checkpoints stated took; RollupCostUSD (part of CostUSD)
	// and the tokens are those of the summaries, on the summary model, kept out of
	// the prompt token counts above.
	Rollups            int     `json:"rollups,omitempty"`
	RollupCostUSD      float64 `json:"rollup_cost_usd,omitempty"`
	RollupInputTokens  int     `json:"rollup_input_tokens,omitempty"`
	RollupOutputTokens int     `json:"rollup_output_tokens,omitempty"`

	// AddedMS is the time the server added to a turn before calling the provider.
	AddedMS      Percentiles `json:"added_ms"`
	FirstTokenMS Percentiles `json:"first_token_ms"`
	Reconnects   int         `json:"reconnects"`
	WallSeconds  float64     `json:"wall_seconds"`

	// Baselines are the stateless clients' results, by name.
	Baselines map[string]*Result `json:"baselines,omitempty"`
	// CeilingCachedShare is the largest share of prompt tokens any layout could
	// have read from the cache (see ceiling.go and docs/savings.md).
	CeilingCachedShare float64 `json:"ceiling_cached_share,omitempty"`
	// FloorCostUSD is the least any server could have paid for the same
	// conversations and answers (see ceiling.go and docs/savings.md).
	FloorCostUSD float64 `json:"floor_cost_usd,omitempty"`
	// PerTurn are the bytes clients sent at their N-th turn, summed over
	// conversations.
	PerTurn []TurnBytes `json:"per_turn,omitempty"`
	// Long are the costs of the conversations of 10 or more recorded answers.
	Long *LongFigures `json:"long_conversations,omitempty"`
	// Ratios are stated's figures over the baselines' and the ceiling.
	Ratios *Ratios `json:"ratios,omitempty"`

	// Sessions are the IDs of the sessions the replay opened, in no order.
	Sessions []string `json:"-"`

	added, firstToken []float64
	errs              []string
	refs              []sessionRef
}

// TurnBytes is what clients sent at their N-th turn, summed over conversations.
type TurnBytes struct {
	Turn           int   `json:"turn"`
	StatedBytes    int64 `json:"stated_bytes"`
	StatelessBytes int64 `json:"stateless_bytes"`
}

// LongFigures are the costs of the conversations of at least LongTurns recorded
// answers, per side.
type LongFigures struct {
	Conversations int     `json:"conversations"`
	StatedCostUSD float64 `json:"stated_cost_usd"`
	NaiveCostUSD  float64 `json:"naive_cost_usd,omitempty"`
	AutoCostUSD   float64 `json:"auto_cost_usd,omitempty"`
	FloorCostUSD  float64 `json:"floor_cost_usd,omitempty"`
}

// LongTurns is how many recorded answers make a conversation long.
const LongTurns = 10

// Ratios are stated's figures over the baselines' (0 where a baseline did not run).
type Ratios struct {
	CostVsNaive     float64 `json:"cost_vs_naive,omitempty"`
	CostVsAuto      float64 `json:"cost_vs_auto,omitempty"`
	LongCostVsAuto  float64 `json:"long_cost_vs_auto,omitempty"`
	CachedVsCeiling float64 `json:"cached_share_vs_ceiling,omitempty"`
	// BytesFromTurn10 is stated's bytes over the stateless bytes, summed over the
	// turns from the tenth on.
	BytesFromTurn10 float64 `json:"bytes_from_turn_10,omitempty"`
	// FloorVsAuto and LongFloorVsAuto are the floor over auto's cost: the lowest
	// cost_vs_auto any server could reach.
	FloorVsAuto     float64 `json:"floor_vs_auto,omitempty"`
	LongFloorVsAuto float64 `json:"long_floor_vs_auto,omitempty"`
}

// ErrorSamples returns up to n error descriptions, for the report.
func (r *Result) ErrorSamples(n int) []string {
	if len(r.errs) < n {
		n = len(r.errs)
	}
	return r.errs[:n]
}

func (r *Result) addUsage(input, write, read, output int) {
	r.InputTokens += input + write + read
	r.CachedInputTokens += read
	r.CacheWriteTokens += write
	r.UncachedTokens += input
	r.OutputTokens += output
}

// checkOptions fills defaults and refuses options that cannot work together.
func checkOptions(opts *Options) error {
	opts.Concurrency = max(opts.Concurrency, 1)
	if opts.Retries == 0 {
		opts.Retries = 2
	}
	if opts.Provider == "" {
		opts.Provider = "anthropic"
	}
	if opts.APIKey == "" {
		opts.APIKey = "replay-baseline"
	}
	if opts.Prices == nil {
		opts.Prices = finops.DefaultPrices()
	}
	for _, b := range opts.Baselines {
		if b != BaselineNaive && b != BaselineAuto {
			return fmt.Errorf("replay: unknown baseline %q", b)
		}
	}
	switch {
	case opts.Provider != "anthropic" && opts.Provider != "openai":
		return fmt.Errorf("replay: provider must be anthropic or openai, not %q", opts.Provider)
	case len(opts.Baselines) > 0 && opts.ProviderURL == "":
		return errors.New("replay: baselines need the provider's URL")
	case opts.ThinkTime < 0:
		return errors.New("replay: negative think time")
	case opts.ThinkTime > 0 && opts.ProviderURL == "":
		return errors.New("replay: think time needs the simulator's URL")
	case len(opts.Servers) == 0:
		return errors.New("replay: no server")
	}
	return nil
}

// convRun is one conversation's replay on every side.
type convRun struct {
	conv      *Conversation
	steps     []step
	player    *player
	baselines []*baseline
	failed    bool
}

// Run plays every conversation on stated's side and beside it on each baseline,
// step by step in lockstep (every conversation's first turn, then every second
// one...), and returns the totals. It fails when the options are wrong or ctx
// ends; failures of single conversations are counted in Errors.
func Run(ctx context.Context, opts Options, convs []Conversation) (*Result, error) {
	if err := checkOptions(&opts); err != nil {
		return nil, err
	}
	start := time.Now()
	var book *presetBook
	if !opts.OpenFrames {
		b, err := newPresetBook(opts.Servers[0], opts.Header)
		if err != nil {
			return nil, err
		}
		book = b
	}
	var clock *simClock
	if opts.ThinkTime > 0 {
		clock = newSimClock(opts.ProviderURL)
		if err := clock.advance(ctx, 0); err != nil {
			return nil, err
		}
	}

	runs := make([]*convRun, len(convs))
	rounds := 0
	for i := range convs {
		c := &convs[i]
		r := &convRun{conv: c, steps: c.steps(), player: newPlayer(&opts, c, book)}
		for _, kind := range opts.Baselines {
			r.baselines = append(r.baselines, newBaseline(kind, &opts, c))
		}
		runs[i] = r
		rounds = max(rounds, len(r.steps))
	}
	for round := 0; round < rounds; round++ {
		playRound(ctx, &opts, runs, round)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if clock != nil && round < rounds-1 {
			if err := clock.advance(ctx, opts.ThinkTime); err != nil {
				return nil, err
			}
		}
	}
	res := collect(&opts, runs, book)
	if err := bookStated(ctx, &opts, runs, res); err != nil {
		return nil, err
	}
	res.finish(time.Since(start))
	return res, nil
}

// playRound plays step round of every conversation that has one, Concurrency at
// a time, and closes the conversations that end with it.
func playRound(ctx context.Context, opts *Options, runs []*convRun, round int) {
	work := make(chan *convRun)
	var wg sync.WaitGroup
	var mu sync.Mutex // serializes progress lines
	for range opts.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range work {
				r.play(ctx, round)
				if round == len(r.steps)-1 || r.failed {
					r.player.close()
					if opts.Progress != nil {
						mu.Lock()
						fmt.Fprintf(opts.Progress, "replay: %s: %d answers, %d errors, "+
							"%.4f USD%s\n", r.conv.ID, r.player.res.Turns, r.player.res.Errors,
							r.player.res.CostUSD, r.baselineCosts())
						mu.Unlock()
					}
				}
			}
		}()
	}
feed:
	for _, r := range runs {
		if round >= len(r.steps) || r.failed {
			continue
		}
		select {
		case work <- r:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
}

// baselineCosts describes the baselines' costs for a progress line.
func (r *convRun) baselineCosts() string {
	out := ""
	for _, b := range r.baselines {
		out += fmt.Sprintf(", %s %.4f USD", b.kind, b.res.CostUSD)
	}
	return out
}

// play plays one step on stated's side, then on each baseline's with the
// session's model and max_tokens. A side that fails ends the conversation on
// every side, so all sides are measured on the same turns.
func (r *convRun) play(ctx context.Context, round int) {
	st := r.steps[round]
	if err := r.player.step(ctx, round, st); err != nil {
		r.player.fail(err)
		r.failed = true
		return
	}
	for _, b := range r.baselines {
		if err := b.step(ctx, st, r.player.sess.Model(), r.player.sess.MaxTokens()); err != nil {
			b.res.Errors++
			b.res.errs = append(b.res.errs, fmt.Sprintf("%s: %v", r.conv.ID, err))
			r.failed = true
			return
		}
	}
}

// collect sums the sides' results and works out the per-turn bytes, the ceiling
// and the long conversations' figures.
func collect(opts *Options, runs []*convRun, book *presetBook) *Result {
	res := &Result{}
	if book != nil {
		res.PresetBytes = book.sent()
	}
	if len(opts.Baselines) > 0 {
		res.Baselines = make(map[string]*Result)
		for _, kind := range opts.Baselines {
			res.Baselines[kind] = &Result{}
		}
	}
	var long *LongFigures
	for _, r := range runs {
		res.merge(r.player.res)
		res.addTurns(r.player.turns)
		isLong := r.conv.assistantTurns() >= LongTurns
		if isLong {
			if long == nil {
				long = &LongFigures{}
			}
			long.Conversations++
			long.StatedCostUSD += r.player.res.CostUSD
		}
		for _, b := range r.baselines {
			res.Baselines[b.kind].merge(b.res)
			if isLong && b.kind == BaselineNaive {
				long.NaiveCostUSD += b.res.CostUSD
			} else if isLong {
				long.AutoCostUSD += b.res.CostUSD
			}
		}
	}
	res.Long = long
	var longFloor float64
	res.CeilingCachedShare, res.FloorCostUSD, longFloor = boundsOfRuns(opts, runs)
	if long != nil {
		long.FloorCostUSD = longFloor
	}
	for _, b := range res.Baselines {
		b.finish(0)
	}
	return res
}

// bookStated waits for the rollups that follow the last turns, then books every
// session's rollups into stated's cost, the long conversations' included.
func bookStated(ctx context.Context, opts *Options, runs []*convRun, res *Result) error {
	if len(res.refs) == 0 {
		return nil
	}
	book, err := newPresetBook(opts.Servers[0], nil)
	if err != nil {
		return err
	}
	if err := waitRollups(ctx, book.base, opts.Header); err != nil {
		return err
	}
	for _, r := range runs {
		if len(r.player.res.refs) == 0 {
			continue
		}
		one := &Result{}
		if err := bookRollups(ctx, opts, r.player.res.refs, one); err != nil {
			return err
		}
		res.Rollups += one.Rollups
		res.RollupCostUSD += one.RollupCostUSD
		res.RollupInputTokens += one.RollupInputTokens
		res.RollupOutputTokens += one.RollupOutputTokens
		res.CostUSD += one.RollupCostUSD
		if res.Long != nil && r.conv.assistantTurns() >= LongTurns {
			res.Long.StatedCostUSD += one.RollupCostUSD
		}
	}
	return nil
}

// boundsOfRuns computes the ceiling of the stateless requests of stated's side,
// in the order the replay sent them, and the floor of all conversations and of
// the long ones.
func boundsOfRuns(opts *Options, runs []*convRun) (ceiling, floor, longFloor float64) {
	var reqs, long []ceilingRequest
	model := opts.Model
	prevEnd := make([]int, len(runs))
	for round := 0; ; round++ {
		more := false
		for i, r := range runs {
			p := r.player
			if round >= len(p.requests) {
				continue
			}
			more = true
			if model == "" && p.sess != nil {
				model = p.sess.Model()
			}
			q := ceilingOf(p.stateless.Model, r.conv.Tools, p.requests[round])
			q.output = p.outputs[round]
			if end := q.ends[len(q.ends)-1]; round == 0 && q.head > 0 {
				q.fresh = end - q.ends[q.head-1]
			} else {
				q.fresh = end - prevEnd[i]
			}
			prevEnd[i] = q.ends[len(q.ends)-1]
			reqs = append(reqs, q)
			if r.conv.assistantTurns() >= LongTurns {
				long = append(long, q)
			}
		}
		if !more {
			break
		}
	}
	rates := ratesOf(opts.Prices, model, opts.Provider == "openai")
	return ceilingShare(reqs, session.MinCacheTokens(model), opts.Provider == "openai"),
		floorCost(reqs, rates), floorCost(long, rates)
}

// ratesOf reads a model's per-token prices from the price table; a model it does
// not know prices at zero. OpenAI bills cache writes as input.
func ratesOf(t *finops.PriceTable, model string, openai bool) priceRates {
	const n = 1000
	at := func(tok finops.Tokens) float64 {
		c, err := t.Cost(model, tok)
		if err != nil {
			return 0
		}
		return c / n
	}
	r := priceRates{input: at(finops.Tokens{Input: n}), write: at(finops.Tokens{CacheWrite5m: n}),
		read: at(finops.Tokens{CacheRead: n}), output: at(finops.Tokens{Output: n})}
	if openai {
		r.write = r.input
	}
	return r
}

func (r *Result) merge(o *Result) {
	r.Conversations += o.Conversations
	r.Turns += o.Turns
	r.Errors += o.Errors
	r.Diverged += o.Diverged
	r.ClientBytesSent += o.ClientBytesSent
	r.StatelessClientBytes += o.StatelessClientBytes
	r.InputTokens += o.InputTokens
	r.CachedInputTokens += o.CachedInputTokens
	r.CacheWriteTokens += o.CacheWriteTokens
	r.UncachedTokens += o.UncachedTokens
	r.OutputTokens += o.OutputTokens
	r.CostUSD += o.CostUSD
	r.Reconnects += o.Reconnects
	r.added = append(r.added, o.added...)
	r.firstToken = append(r.firstToken, o.firstToken...)
	r.errs = append(r.errs, o.errs...)
	for _, ref := range o.refs {
		r.refs = append(r.refs, ref)
		r.Sessions = append(r.Sessions, ref.ID)
	}
}

// addTurns adds one conversation's per-turn bytes.
func (r *Result) addTurns(turns []TurnBytes) {
	for _, t := range turns {
		for len(r.PerTurn) < t.Turn {
			r.PerTurn = append(r.PerTurn, TurnBytes{Turn: len(r.PerTurn) + 1})
		}
		pt := &r.PerTurn[t.Turn-1]
		pt.StatedBytes += t.StatedBytes
		pt.StatelessBytes += t.StatelessBytes
	}
}

func (r *Result) finish(wall time.Duration) {
	r.WallSeconds = wall.Seconds()
	if r.InputTokens > 0 {
		r.CachedShare = float64(r.CachedInputTokens) / float64(r.InputTokens)
	}
	r.AddedMS = percentiles(r.added)
	r.FirstTokenMS = percentiles(r.firstToken)
	r.Ratios = r.ratios()
}

// ratios works out stated's figures over the baselines' and the ceiling.
func (r *Result) ratios() *Ratios {
	if r.Baselines == nil && r.CeilingCachedShare == 0 {
		return nil
	}
	q := &Ratios{}
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	if n := r.Baselines[BaselineNaive]; n != nil {
		q.CostVsNaive = div(r.CostUSD, n.CostUSD)
	}
	if a := r.Baselines[BaselineAuto]; a != nil {
		q.CostVsAuto = div(r.CostUSD, a.CostUSD)
		q.FloorVsAuto = div(r.FloorCostUSD, a.CostUSD)
		if r.Long != nil {
			q.LongCostVsAuto = div(r.Long.StatedCostUSD, r.Long.AutoCostUSD)
			q.LongFloorVsAuto = div(r.Long.FloorCostUSD, r.Long.AutoCostUSD)
		}
	}
	q.CachedVsCeiling = div(r.CachedShare, r.CeilingCachedShare)
	var stated, stateless int64
	for _, t := range r.PerTurn {
		if t.Turn >= 10 {
			stated += t.StatedBytes
			stateless += t.StatelessBytes
		}
	}
	q.BytesFromTurn10 = div(float64(stated), float64(stateless))
	return q
}

func percentiles(v []float64) Percentiles {
	if len(v) == 0 {
		return Percentiles{}
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	at := func(q float64) float64 {
		i := int(q*float64(len(s))+0.5) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return Percentiles{P50: at(0.50), P99: at(0.99), Max: s[len(s)-1]}
}
