package session

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"time"
	"unicode"
)

// Guard stops a session that runs away, as an agent stuck in a loop does: more
// answers than MaxTurns within Window, or RepeatRun answers in a row to
// near-identical input, pause the session. A paused session refuses turns with
// ErrPaused until the client or an admin resumes it (ResumeTurns). The pause and
// the resume are events of the log, so they survive restarts.
//
// A zero field takes DefaultGuard's value; a negative MaxTurns or RepeatRun turns
// that check off.
type Guard struct {
	// MaxTurns is how many answers a session may start within Window. Default 120.
	MaxTurns int
	// Window is the period MaxTurns counts over. Default 10 minutes.
	Window time.Duration
	// RepeatRun is how many answers in a row to near-identical input pause the
	// session. Default 8.
	RepeatRun int
	// Similarity is how alike two inputs must be to count as near-identical, from
	// 0 to 1: the Jaccard similarity of their sets of adjacent word pairs, after
	// case is folded, every run of digits becomes one mark and punctuation and
	// white space become one space. Default 0.95.
	Similarity float64
}

// DefaultGuard is the guard of a manager whose Config leaves it zero.
func DefaultGuard() Guard {
	return Guard{MaxTurns: 120, Window: 10 * time.Minute, RepeatRun: 8, Similarity: 0.95}
}

func (g *Guard) setDefaults() {
	d := DefaultGuard()
	if g.MaxTurns == 0 {
		g.MaxTurns = d.MaxTurns
	}
	if g.Window == 0 {
		g.Window = d.Window
	}
	if g.RepeatRun == 0 {
		g.RepeatRun = d.RepeatRun
	}
	if g.Similarity == 0 {
		g.Similarity = d.Similarity
	}
}

// Validate checks the bounds of g after defaults are applied.
func (g Guard) Validate() error {
	g.setDefaults()
	switch {
	case g.Window < time.Second || g.Window > 31*24*time.Hour:
		return fmt.Errorf("session: guard window %s outside 1s to 31 days", g.Window)
	case g.RepeatRun == 1:
		return fmt.Errorf("session: a guard repeat run of 1 would pause every turn")
	case g.RepeatRun > 1000 || g.MaxTurns > 1000000:
		return fmt.Errorf("session: guard repeat run or max turns too large")
	case g.Similarity <= 0 || g.Similarity > 1:
		return fmt.Errorf("session: guard similarity %g outside (0, 1]", g.Similarity)
	}
	return nil
}

// The reasons of a pause.
const (
	PauseTurnRate      = "turn_rate"      // too many answers within the window
	PauseRepeatedTurns = "repeated_turns" // a run of answers to near-identical input
)

// GuardNote is what a pause or resume event says.
type GuardNote struct {
	// Reason is why a KindPaused event paused the session: PauseTurnRate or
	// PauseRepeatedTurns. Detail says it with the figures.
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
	// By is who resumed: "client" or "admin" (KindResumed).
	By string `json:"by,omitempty"`
}

// guardState is the runaway guard's view of a session.
type guardState struct {
	paused *Event // the pause in force; nil while turns run
}

// restoreGuard finds the pause in force in a log just replayed. It runs before the
// session is shared, so it takes no lock.
func (s *Session) restoreGuard() {
	for i := len(s.events) - 1; i >= 0; i-- {
		switch s.events[i].Kind {
		case KindPaused:
			s.guard.paused = &s.events[i]
			return
		case KindResumed:
			return
		}
	}
}

// Paused reports whether the runaway guard has paused the session.
func (s *Session) Paused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.guard.paused != nil
}

// guardLocked refuses an answer while the session is paused, and pauses it when
// starting one more answer would make it a runaway: it then stores a pause event,
// tells every subscriber, and returns an error matching ErrPaused. s.mu must be
// held.
func (s *Session) guardLocked() error {
	if s.guard.paused != nil {
		return fmt.Errorf("%w: %s", ErrPaused, s.guard.paused.Guard.Detail)
	}
	reason, detail := runaway(s.mgr.cfg.Guard, s.events, s.mgr.now())
	if reason == "" {
		return nil
	}
	if s.staging {
		return fmt.Errorf("%w: %s", ErrPaused, detail) // stored after the turn (overlap.go)
	}
	e := Event{Kind: KindPaused, Time: s.mgr.now().UTC(),
		Guard: &GuardNote{Reason: reason, Detail: detail}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stored, err := s.appendLocked(ctx, e)
	if err != nil {
		return err
	}
	s.guard.paused = stored
	s.publishLocked(nil, stored)
	s.mgr.log.Warn("session paused by the runaway guard", "session", s.id, "tenant", s.tenant,
		"reason", reason)
	return fmt.Errorf("%w: %s", ErrPaused, detail)
}

// ResumeTurns lifts a pause of the runaway guard: it stores a resume event saying
// who resumed (by: "client" or "admin"), tells every subscriber, and turns run
// again; the guard counts afresh from the resume. Resuming a session that is not
// paused does nothing. Errors: ErrInvalid for another by, ErrClosed, or a storage
// error.
func (s *Session) ResumeTurns(ctx context.Context, by string) error {
	if by != "client" && by != "admin" {
		return fmt.Errorf("%w: resumed by %q", ErrInvalid, by)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mgr.closing() {
		return ErrClosed
	}
	if s.guard.paused == nil {
		return nil
	}
	stored, err := s.appendLocked(ctx, Event{Kind: KindResumed, Time: time.Now().UTC(),
		Guard: &GuardNote{By: by}})
	if err != nil {
		return err
	}
	s.guard.paused = nil
	s.publishLocked(nil, stored)
	s.mgr.log.Info("session resumed", "session", s.id, "tenant", s.tenant, "by", by)
	return nil
}

// runaway decides whether one more answer makes the session a runaway, from the
// log since the last pause or resume, and says why. The input of an answer is the
// text of the turns and tool results between it and the answer before; the input
// of the answer about to start is what follows the last answer.
func runaway(g Guard, events []Event, now time.Time) (reason, detail string) {
	since := now.Add(-g.Window)
	answers := 0
	var inputs, cur []string
	for i := len(events) - 1; i >= 0; i-- {
		e := &events[i]
		if e.Kind == KindPaused || e.Kind == KindResumed {
			break
		}
		switch e.Kind {
		case KindAssistant:
			if !e.Time.Before(since) {
				answers++
			}
			inputs, cur = append(inputs, joinInput(cur)), nil
		case KindUser, KindToolResult:
			cur = append(cur, e.Text)
		}
		if g.MaxTurns > 0 && answers >= g.MaxTurns {
			return PauseTurnRate, fmt.Sprintf("more than %d answers within %s", g.MaxTurns,
				g.Window)
		}
		if e.Time.Before(since) && len(inputs) >= g.RepeatRun {
			break
		}
	}
	inputs = append(inputs, joinInput(cur))
	if g.RepeatRun > 1 && repeatedRun(inputs, g.RepeatRun, g.Similarity) {
		return PauseRepeatedTurns, fmt.Sprintf("%d answers in a row to near-identical input",
			g.RepeatRun)
	}
	return "", ""
}

// joinInput joins the texts of one input, collected newest first.
func joinInput(texts []string) string {
	if len(texts) == 1 {
		return texts[0]
	}
	var b strings.Builder
	for i := len(texts) - 1; i >= 0; i-- {
		b.WriteString(texts[i])
		b.WriteByte('\n')
	}
	return b.String()
}

// repeatedRun reports whether the newest input (inputs[0]) and the run-1 inputs
// before it are near-identical to it.
func repeatedRun(inputs []string, run int, similarity float64) bool {
	if len(inputs) < run || strings.TrimSpace(inputs[0]) == "" {
		return false
	}
	newest := shingles(inputs[0])
	for _, in := range inputs[1:run] {
		if jaccard(newest, shingles(in)) < similarity {
			return false
		}
	}
	return true
}

// maxShingleBytes bounds the text an input is compared by: its start and its end.
const maxShingleBytes = 8 << 10

// shingles returns the hashes of the adjacent word pairs of text after
// normalizing it (case folded, digit runs as one mark, other non-letters as
// space); a text of one word gives that word.
func shingles(text string) map[uint64]bool {
	if len(text) > maxShingleBytes {
		text = text[:maxShingleBytes/2] + " " + text[len(text)-maxShingleBytes/2:]
	}
	words := strings.FieldsFunc(normalizeInput(text), unicode.IsSpace)
	set := make(map[uint64]bool, len(words))
	hash := func(parts ...string) uint64 {
		h := fnv.New64a()
		for _, p := range parts {
			h.Write([]byte(p))
			h.Write([]byte{0})
		}
		return h.Sum64()
	}
	if len(words) == 1 {
		set[hash(words[0])] = true
	}
	for i := 1; i < len(words); i++ {
		set[hash(words[i-1], words[i])] = true
	}
	return set
}

func normalizeInput(text string) string {
	var b strings.Builder
	b.Grow(len(text))
	digits := false
	for _, r := range strings.ToLower(text) {
		switch {
		case unicode.IsDigit(r):
			if !digits {
				b.WriteByte('#')
			}
			digits = true
			continue
		case unicode.IsLetter(r):
			b.WriteRune(r)
		default:
			b.WriteByte(' ')
		}
		digits = false
	}
	return b.String()
}

// jaccard is |a ∩ b| / |a ∪ b|; two empty sets are identical.
func jaccard(a, b map[uint64]bool) float64 {
	if len(a) == 0 && len(b) == 0 {
		return 1
	}
	common := 0
	for h := range a {
		if b[h] {
			common++
		}
	}
	return float64(common) / float64(len(a)+len(b)-common)
}

// ResumeTurns lifts the runaway guard's pause of session id of tenant, as
// Session.ResumeTurns does. A session of another tenant yields ErrNotFound.
func (m *Manager) ResumeTurns(ctx context.Context, tenant, id, by string) error {
	s, err := m.Get(ctx, tenant, id)
	if err != nil {
		return err
	}
	return s.ResumeTurns(ctx, by)
}
