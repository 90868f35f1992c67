package sim

// cacheUsage is how an Anthropic prompt's tokens split by cache state. The four
// parts are disjoint and sum to the prompt.
type cacheUsage struct {
	input   int // after the last cached or written breakpoint, or too short to cache
	read    int // read from the cache
	write5m int // written to the cache with a 5 minute TTL
	write1h int // written to the cache with a 1 hour TTL
}

// applyAnthropicCache reads and writes the cache for one Messages request and
// returns the usage split, following the Anthropic prompt caching docs:
//
//   - Read: for each breakpoint, the system looks for an entry at that block or
//     at most LookbackBlocks blocks before it, walking back, and the longest hit
//     over all breakpoints is read. A hit refreshes the entry's TTL.
//   - Write: an entry is written only at a breakpoint, keyed by the whole prefix
//     up to and including its block. Every breakpoint after the hit whose prefix
//     reaches MinCacheTokens is written; a shorter prefix is not cached at all.
//   - Usage: cache_read_input_tokens is the hit's prefix; the tokens from the hit
//     to the last written breakpoint are cache_creation_input_tokens, each segment
//     booked at the TTL of the breakpoint that ends it; the rest is input_tokens.
func (s *Server) applyAnthropicCache(ns digest, blocks []promptBlock, rules Rules) cacheUsage {
	ends := make([]int, len(blocks)) // ends[i]: tokens of blocks 0..i
	total := 0
	var marks []int
	for i, b := range blocks {
		total += b.tokens
		ends[i] = total
		if b.mark != nil {
			marks = append(marks, i)
		}
	}
	var u cacheUsage
	if len(marks) == 0 {
		u.input = total
		return u
	}

	now := s.clock.Now()
	s.cache.lock()
	defer s.cache.unlock()

	hit := -1
	for _, m := range marks {
		for j := m; j >= 0 && j >= m-rules.LookbackBlocks && j > hit; j-- {
			if s.cache.hitLocked(entryKey(ns, blocks[j].prefix, 0), now) {
				hit = j
				break
			}
		}
	}
	done := 0
	if hit >= 0 {
		done = ends[hit]
		u.read = done
	}

	for _, m := range marks {
		if m <= hit || ends[m] < rules.MinCacheTokens {
			continue
		}
		ttl, long := markTTL(blocks[m].mark, rules)
		s.cache.putLocked(entryKey(ns, blocks[m].prefix, 0), ttl, now)
		if long {
			u.write1h += ends[m] - done
		} else {
			u.write5m += ends[m] - done
		}
		done = ends[m]
	}
	u.input = total - u.read - u.write5m - u.write1h
	return u
}
