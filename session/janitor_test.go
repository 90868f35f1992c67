package session

import (
	"context"
	"testing"
	"time"
)

func TestJanitorTicksWithinBounds(t *testing.T) {
	cases := []struct {
		name       string
		idle, tick time.Duration
	}{
		{"a one second timeout is looked at four times a second", time.Second,
			250 * time.Millisecond},
		{"a very short timeout is looked at every 100ms", 100 * time.Millisecond,
			100 * time.Millisecond},
		{"the default timeout is looked at every minute", 10 * time.Minute, time.Minute},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := janitorTick(c.idle); got != c.tick {
				t.Errorf("tick %v for an idle timeout of %v, want %v", got, c.idle, c.tick)
			}
		})
	}
}

// Regression: the janitor held the manager's lock while taking a session's, and a
// turn being admitted holds the session's lock while asking the manager whether
// it is closing: the two deadlocked.
func TestEvictionDoesNotDeadlockWithASessionAskingTheManager(t *testing.T) {
	h := newHarness(t)
	s, err := h.mgr.Open(context.Background(), "t1", Settings{})
	if err != nil {
		t.Fatal(err)
	}

	s.mu.Lock() // as Submit holds it
	evicted := make(chan int, 1)
	go func() { evicted <- h.mgr.evictIdle(time.Now().Add(time.Hour)) }()
	// While the janitor waits for the session, the session asks the manager, again
	// and again for a while, so that the janitor is surely waiting by then.
	for start := time.Now(); time.Since(start) < 200*time.Millisecond; {
		asked := make(chan struct{})
		go func() { h.mgr.closing(); close(asked) }()
		select {
		case <-asked:
		case <-time.After(2 * time.Second):
			s.mu.Unlock()
			t.Fatal("the session could not ask the manager while the janitor ran")
		}
	}
	s.mu.Unlock()
	if n := <-evicted; n != 1 {
		t.Errorf("evicted %d sessions, want 1", n)
	}
}
