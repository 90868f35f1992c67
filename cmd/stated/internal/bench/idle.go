package bench

import (
	"context"
	"time"
)

// attachWait bounds the wait for the server to count every idle connection.
const attachWait = 10 * time.Second

// idle measures server memory per connected idle session: before (read with a
// garbage collection before the first connection) and after opening the
// sessions and letting them settle, divided by the sessions opened. It then
// holds the connections for o.Hold and closes them.
func (r *runner) idle(ctx context.Context, before *Stats) error {
	r.res.ServerBefore = before.figures()
	if before.SessionsInMemory > 0 || before.Connections > 0 {
		r.note("the server held %d sessions and %d connections before the run: their "+
			"eviction or closing during it would count against the figures",
			before.SessionsInMemory, before.Connections)
	}
	r.open(ctx)
	if len(r.conns) == 0 {
		return ErrNoSessions
	}
	r.settle(ctx)
	after, err := r.fetchAfter(ctx, true)
	if err != nil {
		return err
	}
	r.res.ServerAfter = after.figures()
	n := float64(len(r.conns))
	per := func(b, a int64) *float64 {
		v := float64(a-b) / n
		return &v
	}
	// A server that cannot read its resident set (no /proc, or no descriptor
	// left to open it with) reports 0: a difference with it means nothing.
	if before.Process.RSSBytes > 0 && after.Process.RSSBytes > 0 {
		r.res.IdleBytesPerSession = per(before.Process.RSSBytes, after.Process.RSSBytes)
	} else {
		r.note("the server reported no resident memory (rss_bytes 0 before or after; at " +
			"its open-file limit it cannot read /proc): idle_bytes_per_session is left out")
	}
	r.res.IdleHeapBytesPerSession = per(before.Process.GoHeapBytes, after.Process.GoHeapBytes)
	r.res.IdleStackBytesPerSession = per(before.Process.GoStackBytes,
		after.Process.GoStackBytes)
	if after.Connections < int64(len(r.conns)) {
		r.note("the server counted %d connections for %d sessions opened", after.Connections,
			len(r.conns))
	}
	r.progress("%d idle sessions attached; holding them %s", len(r.conns), r.o.Hold)

	r.hold(ctx)
	return nil
}

// settle waits until the server counts every opened connection (at most
// attachWait), then o.Settle more.
func (r *runner) settle(ctx context.Context) {
	deadline := time.Now().Add(attachWait)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		s, err := r.stats.fetch(ctx, false)
		if err == nil && s.Connections >= int64(len(r.conns)) {
			break
		}
		sleep(ctx, evictionPoll)
	}
	sleep(ctx, r.o.Settle)
}

// hold keeps the idle connections open for o.Hold, counting any the server
// closes, then closes them.
func (r *runner) hold(ctx context.Context) {
	deadline := time.Now().Add(r.o.Hold)
	for {
		rep, ok := r.next(ctx, deadline)
		if !ok {
			break
		}
		if rep.kind == reportLost && rep.c != nil && !rep.c.dead {
			rep.c.dead = true
			r.res.IdleLost++
			r.fail("lost:" + rep.code)
		}
	}
	r.closeConns(ctx)
}
