package session

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// turnAndAnswer submits a user turn and waits for its answer; it returns the
// error Submit gave.
func turnAndAnswer(t *testing.T, s *Session, rec *recorder, id, text string) error {
	t.Helper()
	before := len(rec.answers())
	_, err := s.Submit(ctx, rec, userTurn(id, text))
	if err == nil {
		rec.waitAnswers(t, before+1)
	}
	return err
}

func TestTooManyTurnsInTheWindowPauseTheSession(t *testing.T) {
	h := newFinopsHarness(t, Guard{MaxTurns: 3, Window: time.Hour, RepeatRun: -1})
	s, rec := h.open(Settings{})
	for i := range 3 {
		if err := turnAndAnswer(t, s, rec, fmt.Sprint("u", i), fmt.Sprint("question ", i)); err !=
			nil {
			t.Fatalf("turn %d: %v", i, err)
		}
	}
	stored, err := s.Submit(ctx, rec, userTurn("u3", "one more"))
	if !errors.Is(err, ErrPaused) || stored == nil {
		t.Fatalf("the fourth turn: %v (stored %v); want it stored and ErrPaused", err, stored)
	}
	calls := h.prov.calls()
	last := s.History(0)[len(s.History(0))-1]
	if last.Kind != KindPaused || last.Guard == nil || last.Guard.Reason != PauseTurnRate {
		t.Fatalf("last event %+v: want a pause for the turn rate", last)
	}

	if _, err := s.Submit(ctx, rec, userTurn("u4", "and another")); !errors.Is(err, ErrPaused) {
		t.Fatalf("a turn while paused = %v", err)
	}
	if err := s.Retry(ctx); !errors.Is(err, ErrPaused) {
		t.Fatalf("a retry while paused = %v", err)
	}
	if h.prov.calls() != calls {
		t.Fatal("the provider was called while the session was paused")
	}
}

func TestResumeLiftsThePauseAndTheGuardCountsAfresh(t *testing.T) {
	h := newFinopsHarness(t, Guard{MaxTurns: 2, Window: time.Hour, RepeatRun: -1})
	s, rec := h.open(Settings{})
	turnAndAnswer(t, s, rec, "u1", "one")
	turnAndAnswer(t, s, rec, "u2", "two")
	if err := turnAndAnswer(t, s, rec, "u3", "three"); !errors.Is(err, ErrPaused) {
		t.Fatalf("third turn = %v, want ErrPaused", err)
	}

	// The pause is durable: it survives a restart.
	h.restartFinops()
	s, err := h.mgr.Get(ctx, "t1", s.ID())
	if err != nil {
		t.Fatal(err)
	}
	rec = &recorder{}
	s.Subscribe(rec, s.Info().Epoch, s.Info().LastSeq)
	if !s.Paused() {
		t.Fatal("the pause did not survive the restart")
	}
	if err := s.ResumeTurns(ctx, "someone"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ResumeTurns by someone = %v", err)
	}
	if err := s.ResumeTurns(ctx, "client"); err != nil {
		t.Fatal(err)
	}
	if s.Paused() {
		t.Fatal("still paused")
	}
	// The turn that tripped the guard waits for an answer: retry answers it.
	if err := s.Retry(ctx); err != nil {
		t.Fatalf("Retry after the resume = %v", err)
	}
	rec.waitAnswers(t, 1)
	if err := turnAndAnswer(t, s, rec, "u4", "four"); err != nil {
		t.Fatalf("the guard counts from the resume: one answer since, got %v", err)
	}
	if err := turnAndAnswer(t, s, rec, "u5", "five"); !errors.Is(err, ErrPaused) {
		t.Fatalf("two answers since the resume, got %v", err)
	}
	if err := h.mgr.ResumeTurns(ctx, "t2", s.ID(), "admin"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another tenant resumed it: %v", err)
	}
	if err := h.mgr.ResumeTurns(ctx, "t1", s.ID(), "admin"); err != nil || s.Paused() {
		t.Fatalf("admin resume: %v, paused %v", err, s.Paused())
	}
}

func TestARunOfNearIdenticalTurnsPausesTheSession(t *testing.T) {
	h := newFinopsHarness(t, Guard{MaxTurns: -1, RepeatRun: 3, Similarity: 0.9})
	s, rec := h.open(Settings{})
	// Different turns never pause.
	for i, text := range []string{"what is the weather", "book a flight to Paris",
		"what is the weather in Rome", "cancel it"} {
		if err := turnAndAnswer(t, s, rec, fmt.Sprint("v", i), text); err != nil {
			t.Fatalf("turn %q: %v", text, err)
		}
	}
	// The same command with a counter that moves is near-identical.
	for i := 1; i <= 2; i++ {
		if err := turnAndAnswer(t, s, rec, fmt.Sprint("r", i),
			fmt.Sprintf("Retry the build, attempt %d.", i)); err != nil {
			t.Fatalf("repeat %d: %v", i, err)
		}
	}
	err := turnAndAnswer(t, s, rec, "r3", "retry the build -- attempt 17")
	if !errors.Is(err, ErrPaused) {
		t.Fatalf("the third near-identical turn = %v, want ErrPaused", err)
	}
	last := s.History(0)[len(s.History(0))-1]
	if last.Guard == nil || last.Guard.Reason != PauseRepeatedTurns {
		t.Fatalf("last event %+v: want a pause for repeated turns", last)
	}
}

func TestSimilarityOfInputs(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want bool // similar at 0.9
	}{
		{"identical", "list the files", "list the files", true},
		{"case, punctuation and numbers do not matter", "Run test #12!", "run test 13", true},
		{"a different request", "list the files", "delete the files", false},
		{"one word", "continue", "continue", true},
		{"one word and another", "continue", "stop", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := jaccard(shingles(tt.a), shingles(tt.b)) >= 0.9
			if got != tt.want {
				t.Fatalf("similar(%q, %q) = %v", tt.a, tt.b, got)
			}
		})
	}
}

func TestGuardBounds(t *testing.T) {
	for _, g := range []Guard{{RepeatRun: 1}, {Similarity: 1.5}, {Window: time.Millisecond}} {
		if g.Validate() == nil {
			t.Errorf("Validate(%+v) passed", g)
		}
	}
	if err := (Guard{}).Validate(); err != nil {
		t.Errorf("the default guard: %v", err)
	}
}
