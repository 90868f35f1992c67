package transport

import (
	"context"
	"errors"
	"fmt"

	"github.com/stated-dev/stated/session"
)

// placed is where a request's new turns went: the session, what Extend did, and
// the seq of the first new turn.
type placed struct {
	sess      *session.Session
	ext       session.Extended
	inputFrom uint64
}

// openFresh opens a session for tenant that holds history followed by fresh, and
// starts the answer.
func (a *openaiAPI) openFresh(ctx context.Context, tenant string, st session.Settings,
	history, fresh []session.Item) (placed, error) {
	items := make([]session.Item, 0, len(history)+len(fresh))
	items = append(append(items, history...), fresh...)
	for i := range items {
		if items[i].Kind != session.KindAssistant && items[i].TurnID == "" {
			items[i].TurnID = fmt.Sprintf("history-%d", i+1)
		}
	}
	s, ext, err := a.sessions.OpenWith(ctx, tenant, st, items, true)
	if err != nil {
		return placed{}, err
	}
	return placed{sess: s, ext: ext, inputFrom: uint64(len(history)) + 1}, nil
}

// extendOrFork appends fresh to s where its log ends at after (AnySeq: wherever it
// ends) and starts the answer. When s has other settings than st, or its log has
// moved past after, or an answer of s is running, a new session gets s's log up
// to after followed by fresh instead: the conversation forks, as a chain of
// OpenAI responses may.
func (a *openaiAPI) extendOrFork(ctx context.Context, tenant string, s *session.Session,
	after uint64, st session.Settings, fresh []session.Item) (placed, error) {
	info := s.Info()
	if sameSettings(&info.Settings, &st) {
		ext, err := s.Extend(ctx, after, fresh, true)
		if err == nil {
			return placed{sess: s, ext: ext, inputFrom: firstSeq(ext, len(fresh))}, nil
		}
		if !errors.Is(err, session.ErrMoved) && !errors.Is(err, session.ErrBusy) {
			return placed{}, err
		}
	}
	history := s.History(0)
	if after != session.AnySeq && after < uint64(len(history)) {
		history = history[:after]
	}
	return a.openFresh(ctx, tenant, st, itemsOf(history), fresh)
}

// firstSeq is the seq of the first of n items whose last has the seq ext names.
func firstSeq(ext session.Extended, n int) uint64 {
	if uint64(n) > ext.LastSeq {
		return 1
	}
	return ext.LastSeq - uint64(n) + 1
}

// placeStateless puts the new turns of a request that carries its whole history.
// The history key of what came before them names the session point that holds
// that history; the new turns are appended there. A history no session holds, or
// whose session has moved on (a regenerated answer, an edited turn), gets a new
// session that imports it.
func (a *openaiAPI) placeStateless(ctx context.Context, tenant string, t *thread,
	keys []historyKey) (placed, error) {
	if t.newFrom > 0 {
		pos, found, err := a.index.history(ctx, tenant, keys[t.newFrom])
		if err != nil {
			return placed{}, err
		}
		if found {
			s, err := a.sessions.Get(ctx, tenant, pos.Session)
			switch {
			case err == nil:
				return a.extendOrFork(ctx, tenant, s, pos.Seq, t.settings, t.newItems())
			case !errors.Is(err, session.ErrNotFound):
				return placed{}, err
			}
		}
	}
	return a.openFresh(ctx, tenant, t.settings, t.items[:t.newFrom], t.newItems())
}

// remember records that the history named last, followed by the answer e, is the
// log of s up to e: the next request of a stateless client, which carries that
// history, finds s. A failure costs only that request's cache, so it is logged.
func (a *openaiAPI) remember(ctx context.Context, tenant string, last historyKey,
	s *session.Session, e *session.Event) {
	it, ok := answerItem(e)
	if !ok {
		return
	}
	p := position{Session: s.ID(), Seq: e.Seq}
	if err := a.index.putHistory(ctx, tenant, last.fold(&it), p); err != nil {
		a.log.Warn("history key not stored", "session", s.ID(), "seq", e.Seq, "err", err)
	}
}

// checkModel refuses a model the provider does not serve, as OpenAI does.
func (a *openaiAPI) checkModel(model string) *apiError {
	if model == "" {
		return invalidRequest("model", "you must provide a model parameter")
	}
	if !a.sessions.Serves(model) {
		return modelNotFound(model)
	}
	return nil
}
