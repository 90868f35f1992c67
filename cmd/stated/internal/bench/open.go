package bench

import (
	"context"
	"time"

	"github.com/stated-dev/stated/transport/wire"
)

// maxPendingOpens bounds the connections being made or awaiting their session
// frame at once, so that a server that stops answering does not make the run
// start thousands of doomed dials.
const maxPendingOpens = 512

// maxFailuresInARow stops opening when this many connections in a row failed:
// the server (or the machine) is at a limit, and more attempts would only wait
// for their timeouts.
const maxFailuresInARow = 64

// open makes o.Sessions connections at o.ConnectRate, each with an open frame,
// and waits until each has its session frame or failed. The attached ones are
// r.conns. It stops opening at the first sign of a limit (this process's
// open-file limit, no source port left, many failures in a row) and says why.
func (r *runner) open(ctx context.Context) {
	start := time.Now()
	pace := newPacer(r.o.ConnectRate)
	launched, resolved, inARow := 0, 0, 0
	resolve := func(rep report) {
		if r.openReport(rep, &inARow) {
			resolved++
		}
	}
	for launched < r.o.Sessions && r.res.OpenStopped == "" {
		for launched-resolved >= maxPendingOpens {
			rep, ok := r.next(ctx, time.Now().Add(2*r.o.Timeout))
			if !ok {
				break
			}
			resolve(rep)
		}
		r.drain(resolve)
		if launched-resolved >= maxPendingOpens || !pace.wait(ctx) {
			break
		}
		go r.connect(ctx, launched)
		launched++
	}

	// Every pending connection resolves within its dial and attach timeouts.
	deadline := time.Now().Add(2*r.o.Timeout + time.Second)
	for resolved < launched {
		rep, ok := r.next(ctx, deadline)
		if !ok {
			break
		}
		resolve(rep)
	}
	if resolved < launched && ctx.Err() == nil {
		r.note("%d connections neither attached nor failed in time", launched-resolved)
	}
	r.res.Sessions = len(r.conns)
	r.res.OpenSec = time.Since(start).Seconds()
	if r.d.sources.Spread() && launched > 0 {
		r.res.SourceAddresses = (launched-1)/PerSource + 1
	}
	r.progress("opened %d of %d sessions in %.1fs", len(r.conns), r.o.Sessions,
		r.res.OpenSec)
}

// drain handles the reports already waiting, without blocking.
func (r *runner) drain(handle func(report)) {
	for {
		select {
		case rep := <-r.reports:
			handle(rep)
		default:
			return
		}
	}
}

// openReport handles one report of the opening phase and says whether it
// resolved a pending connection (attached or failed).
func (r *runner) openReport(rep report, inARow *int) bool {
	failed := func(reason string) {
		r.res.ConnectFailures[reason]++
		*inARow++
		switch {
		case fatalReason(reason):
			r.res.OpenStopped = reason
		case *inARow >= maxFailuresInARow && r.res.OpenStopped == "":
			r.res.OpenStopped = "failures_in_a_row:" + reason
		}
	}
	switch rep.kind {
	case reportAttached:
		rep.c.attached = true
		r.conns = append(r.conns, rep.c)
		*inARow = 0
		return true
	case reportDialFailed:
		failed(rep.code)
		return true
	case reportRefused, reportLost:
		if rep.c.attached {
			r.turnReport(rep)
			return false
		}
		if rep.c.failed {
			return false
		}
		rep.c.failed = true
		if rep.kind == reportRefused {
			rep.c.close()
			failed("open_refused:" + rep.code)
			return true
		}
		failed(rep.code)
		return true
	}
	return false
}

// connect makes connection index, sends its open frame and becomes its reader.
func (r *runner) connect(ctx context.Context, index int) {
	c, err := r.d.dial(ctx, index)
	if err != nil {
		r.reports <- report{kind: reportDialFailed, at: r.d.since(), code: reasonOfErr(err),
			err: err}
		return
	}
	r.track(c)
	open := wire.ClientFrame{Type: wire.TypeOpen, Model: r.o.Model}
	if err := c.write(open, r.o.Timeout); err != nil {
		c.close()
		r.reports <- report{kind: reportDialFailed, at: r.d.since(), code: reasonOf(err),
			err: err}
		return
	}
	c.read(r.d, r.reports, r.o.Timeout)
}
