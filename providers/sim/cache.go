package sim

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

// cacheKey names one cached prefix: the hash of the cache namespace (API key,
// provider, model, prompt_cache_key) and of the prefix itself.
type cacheKey [sha256.Size]byte

// cacheEntry is one cached prefix. Only its identity and lifetime are kept; the
// simulator never needs the prefix's content back.
type cacheEntry struct {
	key     cacheKey
	ttl     time.Duration
	expires time.Time
}

// promptCache holds the cached prefixes of every namespace, bounded in number.
// When full, the entry used least recently is evicted first.
type promptCache struct {
	max int

	mu      sync.Mutex // guards entries and byUse
	entries map[cacheKey]*list.Element
	byUse   *list.List // of *cacheEntry, most recently used at the front
}

func newPromptCache(maxEntries int) *promptCache {
	return &promptCache{
		max:     maxEntries,
		entries: make(map[cacheKey]*list.Element),
		byUse:   list.New(),
	}
}

// lock takes the cache for one request's whole read-then-write sequence, so that
// what a request reads and what it writes are consistent with each other.
func (c *promptCache) lock() { c.mu.Lock() }

func (c *promptCache) unlock() { c.mu.Unlock() }

// hitLocked reports whether key is cached and alive at now. A hit refreshes the
// entry's lifetime by its own TTL; an expired entry is dropped. The caller holds
// the lock.
func (c *promptCache) hitLocked(key cacheKey, now time.Time) bool {
	el, ok := c.entries[key]
	if !ok {
		return false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.byUse.Remove(el)
		delete(c.entries, key)
		return false
	}
	e.expires = now.Add(e.ttl)
	c.byUse.MoveToFront(el)
	return true
}

// putLocked caches key for ttl from now, replacing an entry with the same key,
// and evicts the least recently used entries beyond the bound. The caller holds
// the lock.
func (c *promptCache) putLocked(key cacheKey, ttl time.Duration, now time.Time) {
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*cacheEntry)
		e.ttl = ttl
		e.expires = now.Add(ttl)
		c.byUse.MoveToFront(el)
		return
	}
	c.entries[key] = c.byUse.PushFront(&cacheEntry{key: key, ttl: ttl, expires: now.Add(ttl)})
	for c.byUse.Len() > c.max {
		oldest := c.byUse.Back()
		c.byUse.Remove(oldest)
		delete(c.entries, oldest.Value.(*cacheEntry).key)
	}
}
