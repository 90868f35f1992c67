package session

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/stated-dev/stated/providers"
)

// cacheParams is what a cache plan needs beyond the prompt and the model.
type cacheParams struct {
	// prevEnd is the index of the last message of the previous request when that
	// request is a prefix of this one, else -1: the entry the moving breakpoint
	// wrote last turn, which this request reads.
	prevEnd int
	// ttl is the lifetime of the moving breakpoints' entries, "5m" or "1h".
	ttl string
	// anchorTTL is the lifetime of the shared prefix and summary entries.
	anchorTTL string
	// key is OpenAI's prompt_cache_key; retention its prompt_cache_retention.
	key       string
	retention string
}

// cachePlan places the cache breakpoints of a prompt.
//
// Anthropic: a breakpoint pays where a later request reads the entry it writes:
//   - at the end of tools and system, the prefix every session of a preset shares
//     (written once, read by all of them);
//   - at the end of the summary message, stable until the next rollup (read when
//     the moving entries have expired);
//   - at the end of the previous request, whose entry this request reads;
//   - at the end of this request, whose entry the next one reads.
//
// Four at most, as the API allows. The breakpoints move with the conversation
// rather than accumulate: every request places them afresh. The previous end is
// marked even though the moving breakpoint's 20-block lookback usually reaches
// it: when a turn adds more than 20 blocks (many parallel tool calls), a read
// from the new end alone would fall short of it. A breakpoint whose prefix is
// below the model's minimum cacheable length would write nothing and is left
// out. TTLs never increase along the prompt, as the API requires.
//
// OpenAI: no breakpoints; the stable prefix is cached automatically, Key routes
// every session of a preset to the same cache, Retention extends its life.
func cachePlan(p *prompt, mi modelInfo, cp cacheParams) providers.CachePlan {
	if !mi.anthropic {
		return providers.CachePlan{Key: cp.key, Retention: cp.retention}
	}
	plan := providers.CachePlan{TTL: cp.ttl}
	anchor := longerTTL(cp.anchorTTL, cp.ttl)
	if p.head >= mi.minCache && (p.req.System != "" || len(p.req.Tools) > 0) {
		plan.System, plan.SystemTTL = true, anchor
	}
	ends := prefixTokens(p)
	last := p.lastIndex()
	mark := func(i int, ttl string) {
		if i < 0 || i > last || ends[i] < mi.minCache {
			return
		}
		for _, j := range plan.Messages {
			if j == i {
				return
			}
		}
		plan.Messages = append(plan.Messages, i)
		if ttl != cp.ttl {
			if plan.MessageTTL == nil {
				plan.MessageTTL = make(map[int]string)
			}
			plan.MessageTTL[i] = ttl
		}
	}
	mark(p.summary, anchor)
	mark(cp.prevEnd, cp.ttl)
	mark(last, cp.ttl)
	return plan
}

// prefixTokens returns, per message, the local token count of the prompt up to
// and including it.
func prefixTokens(p *prompt) []int {
	ends := make([]int, len(p.info))
	n := p.head
	for i, m := range p.info {
		n += m.tokens
		ends[i] = n
	}
	return ends
}

// longerTTL returns the longer of two TTLs.
func longerTTL(a, b string) string {
	if a == ttl1h || b == ttl1h {
		return ttl1h
	}
	return ttl5m
}

// The TTLs of Anthropic cache entries.
const (
	ttl5m = "5m"
	ttl1h = "1h"
)

// prevEndIn returns the index in cur of the furthest cache entry of the
// previous request that cur still starts with, or -1: the previous request's
// end when cur extends it, else the furthest of its other breakpoints (the end of
// the request before it, the summary) before the first message that changed.
func prevEndIn(prev, cur *prompt) int {
	common := 0
	for common < len(prev.req.Messages) && common < len(cur.req.Messages) &&
		sameMessage(&prev.req.Messages[common], &cur.req.Messages[common]) {
		common++
	}
	best := -1
	if n := len(prev.req.Messages); n > 0 && n <= common {
		best = n - 1
	}
	for _, i := range prev.req.Cache.Messages {
		if i < common && i > best {
			best = i
		}
	}
	return best
}

func sameMessage(a, b *providers.Message) bool {
	if a.Role != b.Role || a.Text != b.Text || a.ToolCallID != b.ToolCallID ||
		a.IsError != b.IsError || len(a.ToolCalls) != len(b.ToolCalls) {
		return false
	}
	for i := range a.ToolCalls {
		if a.ToolCalls[i] != b.ToolCalls[i] {
			return false
		}
	}
	return true
}

// rates are a model's prices per token, in USD.
type rates struct {
	input, write5m, write1h, read, output float64
}

// ratesFor returns the per-token prices of model from the manager's cost
// function; without one, or for a model it cannot price, the usual ratios of an
// input price of one dollar per million tokens.
func (m *Manager) ratesFor(model string) rates {
	if r, ok := m.rates.Load(model); ok {
		return r.(rates)
	}
	const n = 1000
	price := func(u providers.Usage) (float64, bool) {
		if m.cfg.Cost == nil {
			return 0, false
		}
		c, err := m.cfg.Cost(model, u)
		return c / n, err == nil
	}
	r := rates{input: 1e-6, write5m: 1.25e-6, write1h: 2e-6, read: 0.1e-6, output: 5e-6}
	in, ok1 := price(providers.Usage{InputTokens: n})
	w5, ok2 := price(providers.Usage{CacheWrite5mTokens: n})
	w1, ok3 := price(providers.Usage{CacheWrite1hTokens: n})
	rd, ok4 := price(providers.Usage{CacheReadTokens: n})
	out, ok5 := price(providers.Usage{OutputTokens: n})
	if ok1 && ok2 && ok3 && ok4 && ok5 && in > 0 {
		r = rates{input: in, write5m: w5, write1h: w1, read: rd, output: out}
	}
	m.rates.Store(model, r)
	return r
}

// gapStats remembers the last gaps between requests of a session or a preset.
// The zero value is empty and ready to use; it is not safe for concurrent use.
type gapStats struct {
	last time.Time
	gaps [16]time.Duration
	n    int // gaps seen, all time
}

// observe records a request at now and the gap since the one before.
func (g *gapStats) observe(now time.Time) {
	if !g.last.IsZero() && now.After(g.last) {
		g.gaps[g.n%len(g.gaps)] = now.Sub(g.last)
		g.n++
	}
	g.last = now
}

// count returns how many gaps are remembered and how many of them fall in
// (lo, hi].
func (g *gapStats) count(lo, hi time.Duration) (in, total int) {
	total = min(g.n, len(g.gaps))
	for _, d := range g.gaps[:total] {
		if d > lo && d <= hi {
			in++
		}
	}
	return in, total
}

// The lifetimes of the two Anthropic TTLs. A gap a little shorter than five
// minutes already risks the entry (the clock starts at the write), so gaps past
// 4.5 minutes count as lost to a 5-minute entry.
const (
	short5m = 270 * time.Second
	life1h  = time.Hour
)

// pauseShare estimates the share of coming gaps that outlive a 5-minute entry but
// not a 1-hour one: the session's own gaps, with the preset's as a prior worth two
// gaps.
func pauseShare(session, preset *gapStats) float64 {
	in, total := session.count(short5m, life1h)
	pin, ptotal := preset.count(short5m, life1h)
	const priorWeight = 2.0
	prior := 0.0
	if ptotal > 0 {
		prior = float64(pin) / float64(ptotal)
	}
	return (float64(in) + prior*priorWeight) / (float64(total) + priorWeight)
}

// chooseTTL returns "1h" when the expected loss of a 5-minute entry to a pause
// (the whole prefix written again instead of read) exceeds the premium of writing
// the new part of the prompt for an hour (Anthropic: 2x input instead of 1.25x).
func chooseTTL(share float64, prefix, fresh int, r rates) string {
	loss := share * float64(prefix) * (r.write5m - r.read)
	premium := float64(fresh) * (r.write1h - r.write5m)
	if loss > premium {
		return ttl1h
	}
	return ttl5m
}

// keyRPM is the request rate one prompt_cache_key may carry before OpenAI sends
// the overflow to other machines, which do not hold the cache ("Prompt caching":
// about 15 requests per minute per prefix and key).
const keyRPM = 15

// maxKeyShards bounds the shards of one preset's key.
const maxKeyShards = 16

// prefixDigest names the shared prefix of a session: tools and system, as sent.
func prefixDigest(model string, st *Settings) string {
	h := sha256.New()
	tools, _ := json.Marshal(st.Tools) // []providers.Tool always encodes
	for _, part := range [][]byte{[]byte(model), tools, []byte(st.System)} {
		h.Write([]byte(strconv.Itoa(len(part))))
		h.Write([]byte{0})
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// openAIKey is the prompt_cache_key of a session: one per tenant and shared
// prefix, so sessions of a preset share one cache. When the prefix carries more
// than keyRPM requests a minute, the key is split into shards (a power of two, so
// doubling them moves only half the sessions) and each session keeps to one.
func openAIKey(tenant, digest, sessionID string, shards int) string {
	h := sha256.Sum256([]byte(tenant + "\x00" + digest))
	key := "stated-" + hex.EncodeToString(h[:8])
	if shards <= 1 {
		return key
	}
	f := fnv.New32a()
	f.Write([]byte(sessionID))
	return key + "-" + strconv.Itoa(int(f.Sum32()%uint32(shards)))
}

// shardsFor returns the shard count for a key carrying rpm requests a minute
// when one key should carry at most perKey (-1: never shard).
func shardsFor(rpm, perKey int) int {
	s := 1
	for perKey > 0 && s < maxKeyShards && rpm > s*perKey {
		s *= 2
	}
	return s
}
