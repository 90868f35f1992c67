package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/stated-dev/stated/transport/wire"
)

// turnsAndResumes opens the sessions, runs the turn phase and then, unless the
// options say not to, the resume phase.
func (r *runner) turnsAndResumes(ctx context.Context) error {
	r.open(ctx)
	if len(r.conns) == 0 {
		return fmt.Errorf("%w: %d tried, failures %v", ErrNoSessions, r.o.Sessions,
			r.res.ConnectFailures)
	}
	if err := r.turnPhase(ctx); err != nil {
		return err
	}
	if r.o.Resume && ctx.Err() == nil {
		r.resumePhase(ctx)
	}
	return nil
}

// turnFrame is the frame of a user turn.
type turnFrame struct {
	Type   string `json:"type"`
	TurnID string `json:"turn_id"`
	Text   string `json:"text"`
}

// turnPhase runs o.Turns rounds: in round k every live session sends its k-th
// turn, and the round ends when every one has its answer (or its timeout).
// /stats is read before and after, and at round boundaries every
// max(1, Turns/10) rounds for the CPU time by history.
func (r *runner) turnPhase(ctx context.Context) error {
	before, err := r.stats.fetch(ctx, false)
	if err != nil {
		return err
	}
	r.res.ServerBefore = before.figures()
	every := max(1, r.o.Turns/10)
	window := CPUWindow{History: 0}
	mark := before
	pace := newPacer(r.o.Rate)
	for k := 1; k <= r.o.Turns && ctx.Err() == nil; k++ {
		if r.live() == 0 {
			r.note("the turn phase stopped at round %d: no session was left to send turns",
				k)
			break
		}
		wall, answered := r.round(ctx, k, pace)
		r.res.WallSec += wall.Seconds()
		window.Rounds++
		window.Turns += answered
		window.WallSec += wall.Seconds()
		if k%every != 0 && k != r.o.Turns && ctx.Err() == nil {
			continue
		}
		now, err := r.fetchAfter(ctx, false)
		if err != nil {
			r.note("the CPU window from history %d was not measured: %v", window.History, err)
		} else {
			r.closeWindow(&window, mark, now)
			mark = now
		}
		window = CPUWindow{History: k}
		if k%every == 0 || k == r.o.Turns {
			r.progress("round %d of %d: %d turns answered", k, r.o.Turns, r.res.Turns)
		}
	}

	after, err := r.fetchAfter(ctx, false)
	if err != nil {
		return err
	}
	r.res.ServerAfter = after.figures()
	return r.serverFigures(before, after)
}

// live counts the sessions that still send turns.
func (r *runner) live() int {
	n := 0
	for _, c := range r.conns {
		if !c.dead {
			n++
		}
	}
	return n
}

// closeWindow adds the CPU window that ends at the snapshot now.
func (r *runner) closeWindow(w *CPUWindow, from, now *Stats) {
	w.CPUSec = now.Process.CPUSec - from.Process.CPUSec
	if w.Turns > 0 {
		w.CPUSecPerTurn = w.CPUSec / float64(w.Turns)
	}
	r.res.CPUByHistory = append(r.res.CPUByHistory, *w)
}

// serverFigures computes the server's timings and CPU time per turn over the
// turn phase.
func (r *runner) serverFigures(before, after *Stats) error {
	for _, h := range []struct {
		name string
		out  *Quantiles
	}{{HistAdded, &r.res.AddedMS}, {HistRelay, &r.res.RelayMS},
		{HistRelayFirst, &r.res.RelayFirstMS}, {HistCommitWait, &r.res.CommitWaitMS},
		{HistRelayPath, &r.res.RelayPathMS}} {
		w, err := Window(before.Latency[h.name], after.Latency[h.name])
		if err != nil {
			return fmt.Errorf("histogram %s: %w", h.name, err)
		}
		*h.out = w.Quantiles()
	}
	if r.res.Turns > 0 {
		cpu := after.Process.CPUSec - before.Process.CPUSec
		r.res.CPUSecPerTurn = cpu / float64(r.res.Turns)
	}
	if others := after.Turns - before.Turns - int64(r.res.TurnsSent); others > 0 {
		r.note("the server accepted %d turns the bench did not send: other clients used it "+
			"during the run, and its figures include theirs", others)
	}
	return nil
}

// round sends turn k of every live session, paced, and waits for the answers.
// It returns the round's time, from its first write to its last answer, and
// how many turns were answered.
func (r *runner) round(ctx context.Context, k int, pace *pacer) (time.Duration, int) {
	start := r.d.since()
	pending, answeredBefore := 0, r.res.Turns
	var lastSent time.Duration
	turnID := "t" + strconv.Itoa(k)
	for _, c := range r.conns {
		if c.dead {
			continue
		}
		if !pace.wait(ctx) {
			break
		}
		r.drain(func(rep report) { pending -= r.turnReport(rep) })
		if c.dead {
			continue // the reports just drained ended it
		}
		text := turnText(r.o.Seed, c.index, k, r.o.TextBytes)
		c.turn = k
		lastSent = r.d.since()
		c.sentAt.Store(int64(lastSent))
		if err := c.write(turnFrame{Type: wire.TypeTurn, TurnID: turnID, Text: text},
			r.o.Timeout); err != nil {
			c.turn, c.dead = 0, true
			c.close()
			r.fail("write:" + reasonOf(err))
			continue
		}
		r.res.TurnsSent++
		pending++
	}

	deadline := r.d.base.Add(lastSent + r.o.Timeout)
	for pending > 0 {
		rep, ok := r.next(ctx, deadline)
		if !ok {
			break
		}
		pending -= r.turnReport(rep)
	}
	end := r.d.since()
	if pending > 0 && ctx.Err() == nil {
		r.timeOut()
	}
	return end - start, r.res.Turns - answeredBefore
}

// timeOut gives up on every turn still waiting for its answer: its session
// sends no more turns.
func (r *runner) timeOut() {
	for _, c := range r.conns {
		if c.turn != 0 {
			c.turn, c.dead = 0, true
			c.close()
			r.fail("timeout")
		}
	}
}

// turnReport handles a report of an attached connection and returns 1 when it
// ends the turn the connection was waiting for, 0 otherwise.
func (r *runner) turnReport(rep report) int {
	c := rep.c
	if c == nil {
		return 0
	}
	waiting := c.turn != 0
	switch rep.kind {
	case reportAnswered:
		if !waiting {
			return 0 // an answer to a turn given up on
		}
		sent := time.Duration(c.sentAt.Load())
		r.res.Turns++
		r.answer = append(r.answer, rep.at-sent)
		if rep.firstDelta > 0 {
			r.firstDelta = append(r.firstDelta, rep.firstDelta-sent)
		}
		if rep.code != "" {
			r.fail(rep.code)
		}
	case reportRefused:
		r.fail(rep.code)
		// A paused session refuses every later turn: stop sending them.
		if rep.code == wire.CodeSessionPaused {
			c.dead = true
		}
	case reportLost:
		c.dead = true
		r.fail("lost:" + rep.code)
	default:
		return 0
	}
	if !waiting {
		return 0
	}
	c.turn = 0
	return 1
}
