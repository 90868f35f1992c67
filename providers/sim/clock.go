package sim

import (
	"sync"
	"time"
)

// Clock tells the simulator the time. Cache entries expire by it, so a test that
// drives a ManualClock sees expiry without waiting.
type Clock interface {
	Now() time.Time
}

// realClock is the wall clock, used when Options.Clock is nil.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// ManualClock is a Clock that moves only when told to. It is safe for concurrent
// use. The zero value stands at the zero time and is ready to use.
type ManualClock struct {
	mu  sync.Mutex // guards now
	now time.Time
}

// NewManualClock returns a ManualClock that stands at start.
func NewManualClock(start time.Time) *ManualClock {
	return &ManualClock{now: start}
}

// Now returns the clock's current time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d (backward if d is negative).
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
