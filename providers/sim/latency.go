package sim

import (
	"context"
	"fmt"
	"math"
	"time"
)

// maxLatency bounds each delay of the latency model.
const maxLatency = 10 * time.Minute

// Latency is the simulator's model of a provider's speed: the time to the first
// token grows with the input tokens that were not read from the cache (prefill),
// and output arrives at a steady rate (decoding). The zero value adds no delay.
//
// A streamed answer waits FirstTokenDelay before its first event and then paces
// every text or argument delta by its tokens; a non-streamed answer waits for
// both before its body. The delays are real time, not the simulator's Clock.
type Latency struct {
	// FirstToken is the base time to the first token of every answer.
	FirstToken time.Duration
	// PerThousandUncached is added to the time to the first token for every
	// 1000 input tokens not read from the cache.
	PerThousandUncached time.Duration
	// TokensPerSecond is the output rate. Zero: output is not paced.
	TokensPerSecond float64
}

// FirstTokenDelay returns the time to the first token of an answer whose prompt
// has uncached tokens not read from the cache.
func (l Latency) FirstTokenDelay(uncached int) time.Duration {
	per := float64(l.PerThousandUncached) * float64(max(uncached, 0)) / 1000
	return l.FirstToken + time.Duration(per)
}

// OutputDelay returns the time it takes to produce tokens of output.
func (l Latency) OutputDelay(tokens int) time.Duration {
	if l.TokensPerSecond <= 0 || tokens <= 0 {
		return 0
	}
	return time.Duration(float64(tokens) / l.TokensPerSecond * float64(time.Second))
}

// validate checks the bounds: every delay from 0 to 10 minutes, the rate from 0
// to one million tokens a second.
func (l Latency) validate() error {
	switch {
	case l.FirstToken < 0 || l.FirstToken > maxLatency:
		return fmt.Errorf("%w: Latency.FirstToken %s is not between 0 and %s",
			ErrBadOptions, l.FirstToken, maxLatency)
	case l.PerThousandUncached < 0 || l.PerThousandUncached > maxLatency:
		return fmt.Errorf("%w: Latency.PerThousandUncached %s is not between 0 and %s",
			ErrBadOptions, l.PerThousandUncached, maxLatency)
	case math.IsNaN(l.TokensPerSecond) || l.TokensPerSecond < 0 || l.TokensPerSecond > 1e6:
		return fmt.Errorf("%w: Latency.TokensPerSecond %g is not between 0 and 1e6",
			ErrBadOptions, l.TokensPerSecond)
	}
	return nil
}

// wait sleeps for d, real time. It returns false, early, when ctx is done or
// the server is closed.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.closed:
		return false
	}
}

// Validate reports the first option out of bounds, wrapping ErrBadOptions (or
// ErrBadFault for a fault rule): latency delays from 0 to 10 minutes, an output
// rate from 0 to one million tokens a second, fault rules that parse back from
// their text form with rates that add up to at most 1.
func (o Options) Validate() error {
	if err := o.Latency.validate(); err != nil {
		return err
	}
	sum := 0.0
	for _, r := range o.Faults {
		if r.Fault.Kind == "" {
			return fmt.Errorf("%w: a fault rule has no kind", ErrBadFault)
		}
		if _, err := ParseFaultRule(r.String()); err != nil {
			return err
		}
		sum += r.Rate
	}
	if sum > 1+1e-9 {
		return fmt.Errorf("%w: the fault rates add up to %g, more than 1", ErrBadFault, sum)
	}
	return nil
}
