package bench

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stated-dev/stated/transport/wire"
)

// evictionPoll is how often the run reads /stats while it waits for the server
// to evict the sessions.
const evictionPoll = 100 * time.Millisecond

// resumePhase closes every connection, waits for the server to evict the
// sessions (up to o.ResumeWait), then resumes each session o.ResumeConcurrency
// at a time and times each resume alone: from writing the resume frame to
// reading the session frame.
func (r *runner) resumePhase(ctx context.Context) {
	r.closeConns(ctx)
	r.res.ResumeCold = r.waitEvicted(ctx)
	if !r.res.ResumeCold && ctx.Err() == nil {
		r.note("the server still held sessions after %s: resumes measured warm "+
			"(run the server with a short --idle-timeout)", r.o.ResumeWait)
	}
	r.progress("resuming %d sessions (cold: %v)", len(r.conns), r.res.ResumeCold)

	jobs := make(chan *conn)
	type outcome struct {
		took time.Duration
		code string
	}
	outcomes := make(chan outcome, len(r.conns))
	var wg sync.WaitGroup
	for range r.o.ResumeConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				took, code := r.resumeOne(ctx, c)
				outcomes <- outcome{took, code}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for _, c := range r.conns {
			if c.sessionID == "" {
				continue
			}
			select {
			case jobs <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	wg.Wait()
	close(outcomes)

	var took []time.Duration
	for o := range outcomes {
		if o.code != "" {
			r.res.ResumeErrors++
			r.fail("resume:" + o.code)
			continue
		}
		took = append(took, o.took)
	}
	r.res.Resumes = len(took)
	r.res.ResumeMS = durationQuantiles(took)
}

// closeConns closes every attached connection and waits for their readers,
// handling the reports they still send.
func (r *runner) closeConns(ctx context.Context) {
	for _, c := range r.conns {
		c.close()
	}
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for _, c := range r.conns {
		for waiting := true; waiting; {
			select {
			case <-c.done:
				waiting = false
			case rep := <-r.reports:
				r.turnReport(rep)
			case <-timeout.C:
				return
			case <-ctx.Done():
				return
			}
		}
	}
}

// waitEvicted polls /stats until the server holds no session in memory, for
// at most o.ResumeWait, and says whether it got there.
func (r *runner) waitEvicted(ctx context.Context) bool {
	start := time.Now()
	defer func() { r.res.EvictionSec = time.Since(start).Seconds() }()
	deadline := start.Add(r.o.ResumeWait)
	for {
		s, err := r.stats.fetch(ctx, false)
		if err == nil && s.SessionsInMemory == 0 {
			return true
		}
		if time.Now().After(deadline) || !sleep(ctx, evictionPoll) {
			return false
		}
	}
}

// resumeOne reconnects c's session with a resume frame holding the last seq
// it saw and returns the time to its session frame, or the code of what went
// wrong. The connection is closed afterwards.
func (r *runner) resumeOne(ctx context.Context, c *conn) (time.Duration, string) {
	rc, err := r.d.dial(ctx, c.index)
	if err != nil {
		return 0, "connect:" + reasonOfErr(err)
	}
	defer rc.close()
	b, err := json.Marshal(wire.ClientFrame{Type: wire.TypeResume, SessionID: c.sessionID,
		Epoch: c.epoch, LastSeq: c.lastSeq})
	if err != nil {
		return 0, "encode"
	}
	rc.ws.SetReadDeadline(time.Now().Add(r.o.Timeout))
	rc.ws.SetWriteDeadline(time.Now().Add(r.o.Timeout))
	start := time.Now()
	if err := rc.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return 0, "write:" + reasonOf(err)
	}
	for {
		_, msg, err := rc.ws.ReadMessage()
		took := time.Since(start)
		if err != nil {
			return 0, "lost:" + lossReason(err)
		}
		var f frame
		if err := json.Unmarshal(msg, &f); err != nil {
			return 0, "malformed_frame"
		}
		switch f.Type {
		case wire.TypeSession:
			return took, ""
		case wire.TypeError:
			return 0, f.Code
		}
	}
}
