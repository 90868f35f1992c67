package session

import (
	"sync"
	"time"

	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/providers"
)

// observeRequestLocked records that a request of the session starts now, for the
// gaps between requests that TTLs and keys are chosen from. s.mu must be held.
func (s *Session) observeRequestLocked() {
	now := s.mgr.now()
	s.mgr.traffic.observe(s.tenant, s.prefix, now)
	s.gaps.observe(now)
}

// requestLocked lays out the request for the next answer and plans its cache:
// breakpoints, their TTLs from the gaps seen between this session's requests and
// its preset's, and OpenAI's key and retention. s.mu must be held.
func (s *Session) requestLocked() *prompt {
	p := s.layoutLocked()
	prev := s.lastPromptLocked()
	traffic := s.mgr.traffic.snapshot(s.tenant, s.prefix)

	mi := s.mgr.modelInfo(p.req.Model)
	params := cacheParams{prevEnd: -1, ttl: ttl5m, anchorTTL: ttl5m}
	if prev != nil {
		params.prevEnd = prevEndIn(prev, p)
	}
	share := pauseShare(&s.gaps, &traffic.gaps)
	if mi.anthropic {
		r := s.mgr.ratesFor(p.req.Model)
		read, fresh := splitAt(p, params.prevEnd)
		params.ttl = chooseTTL(share, read, fresh, r)
		if in, total := traffic.gaps.count(short5m, life1h); total > 0 &&
			float64(in)/float64(total) > presetPauseShare {
			params.anchorTTL = ttl1h
		}
	} else {
		shards := shardsFor(traffic.rpm, s.mgr.cfg.CacheKeyRPM)
		params.key = openAIKey(s.tenant, s.prefix, s.id, shards)
		if mi.retention24h && share > 0 {
			params.retention = "24h"
		}
	}
	p.req.Cache = cachePlan(p, mi, params)
	p.req.Encoded = &s.cache.encoded
	s.lastPrompt = p
	return p
}

// layoutLocked lays out the session's log as the next request shows it, with
// the session's digest cache. s.mu must be held.
func (s *Session) layoutLocked() *prompt {
	if s.cache == nil {
		s.cache = newLayoutCache()
	}
	return layoutCached(&s.settings, s.events, s.cache)
}

// logIndexLocked returns the session's log index, up to date. s.mu must be held.
func (s *Session) logIndexLocked() *logIndex {
	if s.cache == nil {
		s.cache = newLayoutCache()
	}
	return s.cache.indexOf(s.events)
}

// presetPauseShare is the share of a preset's gaps past five minutes above which
// its shared prefix is cached for an hour: each such pause would otherwise write
// the prefix again, while the hour's premium is paid only when it is written.
const presetPauseShare = 0.05

// splitAt returns the local token count of a prompt up to and including message
// prevEnd (what the request reads from the cache), and after it (what it writes).
func splitAt(p *prompt, prevEnd int) (read, fresh int) {
	read = p.head
	for i, m := range p.info {
		if i <= prevEnd {
			read += m.tokens
		} else {
			fresh += m.tokens
		}
	}
	return read, fresh
}

// lastPromptLocked returns the prompt of the request that produced the last
// answer: the one sent, or, after a load, the same one laid out again from the
// log before that answer. Nil when the log has no answer. s.mu must be held.
func (s *Session) lastPromptLocked() *prompt {
	if s.lastPrompt != nil {
		return s.lastPrompt
	}
	for i := len(s.events) - 1; i >= 0; i-- {
		if s.events[i].Kind == KindAssistant {
			return layoutCached(&s.settings, s.events[:i], s.cache)
		}
	}
	return nil
}

// prefixTraffic is what the manager knows of the requests of one shared prefix
// (a tenant's tools and system), across its sessions.
type prefixTraffic struct {
	gaps gapStats
	// minute is the current minute (Unix time / 60); count its requests so far,
	// prev those of the minute before.
	minute      int64
	count, prev int
	rpm         int // the busier of the two minutes
}

// trafficTable tracks prefixTraffic by tenant and prefix. It is safe for
// concurrent use. It forgets everything when it holds maxTraffic prefixes: the
// figures only tune TTLs and keys, and are learned again within minutes.
type trafficTable struct {
	mu       sync.Mutex // guards byPrefix
	byPrefix map[string]*prefixTraffic
}

const maxTraffic = 4096

// snapshot returns a copy of the figures of a prefix; zero when it has none.
func (t *trafficTable) snapshot(tenant, prefix string) prefixTraffic {
	t.mu.Lock()
	defer t.mu.Unlock()
	if pt := t.byPrefix[tenant+"\x00"+prefix]; pt != nil {
		return *pt
	}
	return prefixTraffic{}
}

// observe records a request of the prefix at now.
func (t *trafficTable) observe(tenant, prefix string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	key := tenant + "\x00" + prefix
	pt := t.byPrefix[key]
	if pt == nil {
		if t.byPrefix == nil || len(t.byPrefix) >= maxTraffic {
			t.byPrefix = make(map[string]*prefixTraffic)
		}
		pt = &prefixTraffic{}
		t.byPrefix[key] = pt
	}
	pt.gaps.observe(now)
	minute := now.Unix() / 60
	switch {
	case minute == pt.minute:
	case minute == pt.minute+1:
		pt.minute, pt.prev, pt.count = minute, pt.count, 0
	default:
		pt.minute, pt.prev, pt.count = minute, 0, 0
	}
	pt.count++
	pt.rpm = max(pt.count, pt.prev)
}

// omittedBy returns what the prompt of req left out of the log, per lever, for
// the answer's booking; nil when req is not the last prompt laid out.
func (s *Session) omittedBy(req *providers.Request) map[finops.Lever]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.lastPrompt; p != nil && p.req == req && len(p.omitted) > 0 {
		return p.omitted
	}
	return nil
}

// seedGaps learns the gaps between the requests of a loaded session from its
// log: each answer's request started at the turn before it. It runs before the
// session is shared, so it takes no lock.
func (s *Session) seedGaps() {
	for i := 1; i < len(s.events); i++ {
		if s.events[i].Kind == KindAssistant {
			s.gaps.observe(s.events[i-1].Time)
		}
	}
}
