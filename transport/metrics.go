package transport

import (
	"bufio"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/stated-dev/stated/finops"
)

// metrics counts what the ledger books, for GET /metrics in the Prometheus text
// exposition format (version 0.0.4), written here by hand. Counters start at zero
// when the process starts, as Prometheus expects.
type metrics struct {
	mu       sync.Mutex // guards everything below
	byModel  map[tenantModel]*modelCounters
	latency  map[string]*histogram // by model: request sent to answer stored
	firstTok map[string]*histogram // by model: request sent to first token
}

type tenantModel struct{ tenant, model string }

type modelCounters struct {
	calls   map[string]int64 // by status
	tokens  finops.Tokens    // summed (int is 64 bits here)
	cost    float64
	naive   float64
	savings map[finops.Lever]float64
}

// maxSeries bounds the tenant and model pairs counted apart; past it, new pairs
// are counted under model "_other", so that clients naming many models cannot
// grow the exposition without bound.
const maxSeries = 2000

// Bucket bounds, in seconds.
var (
	latencyBuckets  = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300}
	firstTokBuckets = []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
)

func newMetrics() *metrics {
	return &metrics{byModel: make(map[tenantModel]*modelCounters),
		latency: make(map[string]*histogram), firstTok: make(map[string]*histogram)}
}

// observe counts a booked ledger entry. It is a Ledger observer.
func (m *metrics) observe(e finops.Entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := tenantModel{e.Tenant, e.Model}
	c, ok := m.byModel[key]
	if !ok {
		if len(m.byModel) >= maxSeries {
			key.model = "_other"
		}
		if c, ok = m.byModel[key]; !ok {
			c = &modelCounters{calls: map[string]int64{}, savings: map[finops.Lever]float64{}}
			m.byModel[key] = c
		}
	}
	c.calls[e.Status]++
	c.tokens = c.tokens.Add(e.Tokens)
	c.cost += e.CostUSD
	c.naive += e.NaiveCostUSD
	for lv, usd := range e.SavingsUSD {
		c.savings[lv] += usd
	}
	if e.LatencyMS > 0 {
		histogramOf(m.latency, key.model, latencyBuckets).add(e.LatencyMS / 1000)
	}
	if e.FirstTokenMS > 0 {
		histogramOf(m.firstTok, key.model, firstTokBuckets).add(e.FirstTokenMS / 1000)
	}
}

// histogram is a Prometheus histogram: cumulative counts are computed when written.
type histogram struct {
	bounds []float64
	counts []int64 // per bucket, not cumulative; the last is +Inf
	sum    float64
	n      int64
}

func histogramOf(hs map[string]*histogram, model string, bounds []float64) *histogram {
	h, ok := hs[model]
	if !ok {
		h = &histogram{bounds: bounds, counts: make([]int64, len(bounds)+1)}
		hs[model] = h
	}
	return h
}

func (h *histogram) add(v float64) {
	i, _ := slices.BinarySearch(h.bounds, v)
	h.counts[i]++
	h.sum += v
	h.n++
}

// serveMetrics answers GET /metrics. With authentication on it needs the admin
// key (Prometheus sends it with bearer_token): the figures name every tenant.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Auth && !s.requireAdmin(w, r) {
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	bw := bufio.NewWriter(w)
	s.metrics.write(bw)
	s.writeGauges(bw)
	bw.Flush()
}

// writeGauges writes what is read at scrape time: sessions, connections, budget
// counters.
func (s *Server) writeGauges(w *bufio.Writer) {
	family(w, "stated_active_sessions", "gauge", "Sessions held in memory.")
	fmt.Fprintf(w, "stated_active_sessions %d\n", s.sessions.LiveSessions())
	family(w, "stated_connections", "gauge", "Open WebSocket connections.")
	fmt.Fprintf(w, "stated_connections %d\n", s.Connections())
	if s.cfg.Budgets == nil {
		return
	}
	counters := s.cfg.Budgets.Counters()
	tenants := slices.Sorted(maps.Keys(counters))
	family(w, "stated_budget_refusals_total", "counter",
		"Answers a hard budget limit refused, by tenant.")
	for _, t := range tenants {
		fmt.Fprintf(w, "stated_budget_refusals_total{tenant=%s} %d\n", label(t),
			counters[t].Refused)
	}
	family(w, "stated_budget_degraded_total", "counter",
		"Answers a soft budget limit degraded, by tenant.")
	for _, t := range tenants {
		fmt.Fprintf(w, "stated_budget_degraded_total{tenant=%s} %d\n", label(t),
			counters[t].Degraded)
	}
}

// write writes the ledger's counters and histograms.
func (m *metrics) write(w *bufio.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := slices.SortedFunc(maps.Keys(m.byModel), func(a, b tenantModel) int {
		return strings.Compare(a.tenant+"\x00"+a.model, b.tenant+"\x00"+b.model)
	})
	lbl := func(k tenantModel) string {
		return "tenant=" + label(k.tenant) + ",model=" + label(k.model)
	}

	family(w, "stated_calls_total", "counter", "Provider calls booked, by status.")
	for _, k := range keys {
		c := m.byModel[k]
		for _, st := range slices.Sorted(maps.Keys(c.calls)) {
			fmt.Fprintf(w, "stated_calls_total{%s,status=%s} %d\n", lbl(k), label(st),
				c.calls[st])
		}
	}
	family(w, "stated_tokens_total", "counter", "Tokens booked, by category.")
	for _, k := range keys {
		t := m.byModel[k].tokens
		for _, cat := range []struct {
			name string
			n    int
		}{{"input", t.Input}, {"cache_write_5m", t.CacheWrite5m},
			{"cache_write_1h", t.CacheWrite1h}, {"cache_read", t.CacheRead},
			{"output", t.Output}} {
			fmt.Fprintf(w, "stated_tokens_total{%s,category=%s} %d\n", lbl(k), label(cat.name),
				cat.n)
		}
	}
	m.writeMoney(w, keys, lbl)
	writeHistograms(w, "stated_provider_latency_seconds",
		"From the request sent to the provider to the answer stored.", m.latency)
	writeHistograms(w, "stated_time_to_first_token_seconds",
		"From the request sent to the provider to the first piece of the answer.", m.firstTok)
}

func (m *metrics) writeMoney(w *bufio.Writer, keys []tenantModel,
	lbl func(tenantModel) string) {
	family(w, "stated_cost_usd_total", "counter", "Cost booked, in USD.")
	for _, k := range keys {
		fmt.Fprintf(w, "stated_cost_usd_total{%s} %s\n", lbl(k), num(m.byModel[k].cost))
	}
	family(w, "stated_naive_cost_usd_total", "counter",
		"What stateless clients would have paid for the same calls, in USD.")
	for _, k := range keys {
		fmt.Fprintf(w, "stated_naive_cost_usd_total{%s} %s\n", lbl(k), num(m.byModel[k].naive))
	}
	family(w, "stated_savings_usd_total", "counter",
		"Savings against stateless clients, by lever, in USD; a lever may be negative.")
	for _, k := range keys {
		c := m.byModel[k]
		for _, lv := range slices.Sorted(maps.Keys(c.savings)) {
			fmt.Fprintf(w, "stated_savings_usd_total{%s,lever=%s} %s\n", lbl(k),
				label(string(lv)), num(c.savings[lv]))
		}
	}
	family(w, "stated_cache_read_share", "gauge",
		"Share of prompt tokens read from the provider's cache since the start.")
	for _, k := range keys {
		t := m.byModel[k].tokens
		share := 0.0
		if p := t.Prompt(); p > 0 {
			share = float64(t.CacheRead) / float64(p)
		}
		fmt.Fprintf(w, "stated_cache_read_share{%s} %s\n", lbl(k), num(share))
	}
}

func writeHistograms(w *bufio.Writer, name, help string, hs map[string]*histogram) {
	family(w, name, "histogram", help)
	for _, model := range slices.Sorted(maps.Keys(hs)) {
		h := hs[model]
		var cum int64
		for i, b := range h.bounds {
			cum += h.counts[i]
			fmt.Fprintf(w, "%s_bucket{model=%s,le=\"%s\"} %d\n", name, label(model), num(b), cum)
		}
		fmt.Fprintf(w, "%s_bucket{model=%s,le=\"+Inf\"} %d\n", name, label(model), h.n)
		fmt.Fprintf(w, "%s_sum{model=%s} %s\n", name, label(model), num(h.sum))
		fmt.Fprintf(w, "%s_count{model=%s} %d\n", name, label(model), h.n)
	}
}

func family(w *bufio.Writer, name, typ, help string) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

// label quotes a label value as the exposition format escapes it.
func label(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(v) + `"`
}

func num(v float64) string {
	if math.IsInf(v, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
