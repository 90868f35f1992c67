// Package bench drives a running stated server over the stated.v1 protocol from
// a separate process and measures it: turns per second, the server's added and
// relay time per turn (from its /stats histograms), CPU per turn by history,
// resume latency, and server memory per connected idle session.
//
// The driver is lean on purpose, so that tens of thousands of connections fit
// in one process: one goroutine per connection (its reader), small read
// buffers, pooled write buffers, and no decoding of delta frames.
package bench

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Run measures the server o.Server as o says and returns what it measured.
// When ctx ends, Run stops cleanly and returns what it measured so far with
// Interrupted set. Errors: ErrInvalid for bad options, ErrStats when /stats
// cannot be read before the run, ErrNoSessions when no session could be
// opened; a failure after the run began is a note of the Result instead.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	r, err := newRunner(o)
	if err != nil {
		return nil, err
	}
	defer r.closeAll()

	// A server without /stats, or one that refuses it, fails the run at once.
	first, err := r.stats.fetch(ctx, o.Idle)
	if err != nil {
		return nil, err
	}
	if o.Idle {
		err = r.idle(ctx, first)
	} else {
		err = r.turnsAndResumes(ctx)
	}
	r.finish(ctx)
	if err != nil {
		return r.res, err
	}
	return r.res, nil
}

// runner is one run's state. Its fields belong to the goroutine of Run; the
// connections' readers talk to it only through reports.
type runner struct {
	o       Options
	d       *dialer
	stats   *statsClient
	reports chan report
	res     *Result

	conns      []*conn // attached connections, in the order they attached
	firstDelta []time.Duration
	answer     []time.Duration

	trackMu sync.Mutex // guards tracked
	tracked []*conn    // every connection made, for closeAll
}

func newRunner(o Options) (*runner, error) {
	d, err := newDialer(o.Server, o.Key, o.Timeout, time.Now())
	if err != nil {
		return nil, err
	}
	sc, err := newStatsClient(d.url, o.AdminKey)
	if err != nil {
		return nil, err
	}
	mode := "turns"
	if o.Idle {
		mode = "idle"
	}
	res := &Result{Mode: mode, Server: o.Server, SessionsWanted: o.Sessions,
		ConnectFailures: map[string]int{}, ErrorsByCode: map[string]int{},
		CPUByHistory: []CPUWindow{}}
	if !o.Idle {
		res.TurnsPerSession = o.Turns
	}
	// Each connection sends a few reports per round at most, and the run drains
	// them every round; this many never blocks a reader for long.
	capacity := min(4*o.Sessions+1024, 1<<20)
	return &runner{o: o, d: d, stats: sc, reports: make(chan report, capacity), res: res},
		nil
}

// track records c so that closeAll closes it.
func (r *runner) track(c *conn) {
	r.trackMu.Lock()
	r.tracked = append(r.tracked, c)
	r.trackMu.Unlock()
}

// closeAll closes every connection the run made; closing one twice is harmless.
func (r *runner) closeAll() {
	r.trackMu.Lock()
	all := r.tracked
	r.tracked = nil
	r.trackMu.Unlock()
	for _, c := range all {
		c.close()
	}
}

// next returns the next report, or false once ctx ends or deadline passes.
func (r *runner) next(ctx context.Context, deadline time.Time) (report, bool) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case rep := <-r.reports:
		return rep, true
	case <-ctx.Done():
		return report{}, false
	case <-t.C:
		return report{}, false
	}
}

// fail counts one error under code.
func (r *runner) fail(code string) {
	r.res.Errors++
	r.res.ErrorsByCode[code]++
}

// note adds a note to the result.
func (r *runner) note(format string, args ...any) {
	r.res.Notes = append(r.res.Notes, fmt.Sprintf(format, args...))
}

// progress writes one line of progress, if the options ask for it.
func (r *runner) progress(format string, args ...any) {
	if r.o.Progress != nil {
		fmt.Fprintf(r.o.Progress, "bench: %5.1fs: "+format+"\n",
			append([]any{r.d.since().Seconds()}, args...)...)
	}
}

// finish fills the client-side figures and marks an interrupted run.
func (r *runner) finish(ctx context.Context) {
	r.res.FirstDeltaMS = durationQuantiles(r.firstDelta)
	r.res.AnswerMS = durationQuantiles(r.answer)
	if r.res.WallSec > 0 {
		r.res.TurnsPerSec = float64(r.res.Turns) / r.res.WallSec
	}
	if ctx.Err() != nil {
		r.res.Interrupted = true
	}
}

// fetchAfter reads /stats even when ctx has ended, so that an interrupted run
// still reports the server's side of what it measured.
func (r *runner) fetchAfter(ctx context.Context, gc bool) (*Stats, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return r.stats.fetch(ctx, gc)
}

// sleep waits d or until ctx ends; false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
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
	}
}

// pacer spaces events at a rate: the n-th event waits until n/rate after the
// first. A late event does not let the following ones burst.
type pacer struct {
	interval time.Duration // 0: unpaced
	next     time.Time
}

func newPacer(rate float64) *pacer {
	if rate <= 0 {
		return &pacer{}
	}
	return &pacer{interval: time.Duration(float64(time.Second) / rate)}
}

// wait blocks until the next event's time; false when ctx ended.
func (p *pacer) wait(ctx context.Context) bool {
	if p.interval == 0 {
		return ctx.Err() == nil
	}
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	ok := sleep(ctx, time.Until(p.next))
	p.next = p.next.Add(p.interval)
	return ok
}
