package session

import (
	"fmt"
	"time"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/storage"
)

// replay rebuilds the session's state from its log: the events, the turn IDs seen
// and the tool calls still waiting for results. It runs before the session is
// shared, so it takes no lock.
func (s *Session) replay(recs []storage.Record) error {
	s.events = make([]Event, 0, len(recs))
	for i, r := range recs {
		if r.Seq != uint64(i)+1 {
			return fmt.Errorf("session: log of %s has seq %d at position %d", s.id, r.Seq, i+1)
		}
		e, err := decodeEvent(r.Seq, r.Data)
		if err != nil {
			return err
		}
		s.events = append(s.events, e)
		switch e.Kind {
		case KindUser:
			s.turnIDs[e.TurnID] = e.Seq
		case KindToolResult:
			s.turnIDs[e.TurnID] = e.Seq
			delete(s.pending, e.ToolCallID)
		case KindAssistant:
			s.pending = pendingCalls(&s.events[len(s.events)-1])
		}
	}
	return nil
}

// answerInterrupted starts the answer to a turn that was acknowledged but whose
// answer was lost with the process that was producing it. The client resumes and
// receives it as if nothing had happened; the interrupted provider call may have
// been billed by the provider without being booked here.
func (s *Session) answerInterrupted() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running || len(s.pending) > 0 || !s.needsAnswerLocked(false) {
		return
	}
	s.mgr.log.Info("answering a turn interrupted by a restart", "session", s.id,
		"seq", s.lastSeqLocked())
	s.startAnswerLocked(time.Now())
}

// settingsTokens counts the tokens the settings put in front of every request.
func settingsTokens(st *Settings) int {
	n := providers.CountTokens(st.System)
	for _, t := range st.Tools {
		n += providers.CountTokens(t.Name) + providers.CountTokens(t.Description) +
			providers.CountTokens(string(t.InputSchema))
	}
	return n
}

// promptTokensLocked is the local count of the whole prompt of the next request,
// from the counts stored with each event, as the layout shows the log: the
// summary of the checkpoint in force instead of the turns it folded, stubs
// instead of the blocks it left out. s.mu must be held.
func (s *Session) promptTokensLocked() int {
	return s.layoutLocked().tokens()
}
