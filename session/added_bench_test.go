package session

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stated-dev/stated/providers/anthropic"
	"github.com/stated-dev/stated/providers/sim"
	"github.com/stated-dev/stated/storage"
)

// The time the server adds to a turn before the provider sees it: from Submit
// being called to the provider request written upstream (the first attempt's
// WroteRequest, as Config.ObserveAdded reports it). Real parts throughout: a
// Badger store with synced writes, as the server opens it; the simulator on an
// HTTP listener on loopback, answering at once; addedSessions sessions
// submitting at the same time, each turn after the answer to the one before.
//
//	go test ./session -run '^$' -bench BenchmarkAddedTime -benchtime 3000x -count 5
//
// rate=max submits as fast as the answers come back; rate=500 paces the turns
// of all the sessions together at 500 per second.

// addedSessions is how many sessions submit at once.
const addedSessions = 50

// addedTurnsPerSession is how many turns one session takes before a fresh one
// replaces it, so that the logs stay short whatever b.N is.
const addedTurnsPerSession = 40

// BenchmarkAddedTime reports added-p50-ms, added-p99-ms and added-max-ms over
// every turn, and turns/s.
func BenchmarkAddedTime(b *testing.B) {
	for _, rate := range []int{0, 500} {
		name := "rate=max"
		if rate > 0 {
			name = fmt.Sprintf("rate=%d", rate)
		}
		b.Run(name, func(b *testing.B) { benchAdded(b, rate) })
	}
}

// addedRig is a manager over a synced Badger store and the simulator, whose
// added times are collected.
type addedRig struct {
	mgr *Manager
	mu  sync.Mutex
	obs []time.Duration // one per answer started
}

func newAddedRig(b *testing.B) *addedRig {
	b.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := storage.OpenBadger(storage.BadgerOptions{Dir: b.TempDir(), SyncWrites: true,
		Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	upstream := httptest.NewServer(sim.New(sim.Options{MaxCaptures: -1}))
	b.Cleanup(upstream.Close)
	// A pool as large as the sessions, so that no request waits for a new
	// connection to be dialled.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * addedSessions}}
	b.Cleanup(client.CloseIdleConnections)

	r := &addedRig{}
	r.mgr, err = NewManager(Config{
		Model: "claude-sonnet-4-5", MaxTokens: 256, Logger: quiet,
		// The guard is off: the benchmark's turns are alike and come fast.
		Guard: Guard{MaxTurns: -1, RepeatRun: -1},
		ObserveAdded: func(d time.Duration) {
			r.mu.Lock()
			r.obs = append(r.obs, d)
			r.mu.Unlock()
		},
	}, store, anthropic.New(anthropic.Config{BaseURL: upstream.URL, APIKey: "bench",
		HTTPClient: client}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.mgr.Close(context.Background()) })
	return r
}

// answerWaiter is a Subscriber that signals each answer stored.
type answerWaiter struct{ answers chan struct{} }

func (w *answerWaiter) Deliver(n Note) {
	if n.Kind == NoteEvent && n.Event.Kind == KindAssistant {
		select {
		case w.answers <- struct{}{}:
		default:
		}
	}
}

// benchAdded runs b.N turns over addedSessions sessions, paced at rate turns
// per second (0: unpaced), and reports the added time's quantiles.
func benchAdded(b *testing.B, rate int) {
	r := newAddedRig(b)
	var next atomic.Int64 // the index of the next turn to submit
	var failed atomic.Value
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for g := range addedSessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.runSessions(g, &next, b.N, rate, start); err != nil {
				failed.CompareAndSwap(nil, err)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	r.report(b, elapsed)
}

// runSessions submits turns on sessions of its own until n turns have been
// taken by all the goroutines together, each turn after the answer before.
func (r *addedRig) runSessions(g int, next *atomic.Int64, n, rate int,
	start time.Time) error {
	ctx := context.Background()
	var s *Session
	w := &answerWaiter{answers: make(chan struct{}, 1)}
	for turn := 0; ; turn++ {
		i := int(next.Add(1)) - 1
		if i >= n {
			return nil
		}
		if turn%addedTurnsPerSession == 0 {
			var err error
			if s, err = r.mgr.Open(ctx, "bench", Settings{}); err != nil {
				return err
			}
			s.Subscribe(w, s.Info().Epoch, 0)
		}
		if rate > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
		}
		in := Input{Kind: KindUser, TurnID: fmt.Sprintf("g%d-t%d", g, turn),
			Text:     fmt.Sprintf("Question %d from session %d: what comes next?", turn, g),
			Received: time.Now()}
		if _, err := s.Submit(ctx, nil, in); err != nil {
			return err
		}
		select {
		case <-w.answers:
		case <-time.After(30 * time.Second):
			return fmt.Errorf("no answer to turn %d of session %s", turn, s.ID())
		}
	}
}

// report gives the quantiles of the added times collected, in milliseconds.
func (r *addedRig) report(b *testing.B, elapsed time.Duration) {
	r.mu.Lock()
	obs := slices.Clone(r.obs)
	r.mu.Unlock()
	if len(obs) < b.N {
		b.Fatalf("%d added times for %d turns", len(obs), b.N)
	}
	slices.Sort(obs)
	q := func(p float64) float64 {
		return float64(obs[min(len(obs)-1, int(p*float64(len(obs))))]) / 1e6
	}
	b.ReportMetric(q(0.50), "added-p50-ms")
	b.ReportMetric(q(0.99), "added-p99-ms")
	b.ReportMetric(float64(obs[len(obs)-1])/1e6, "added-max-ms")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "turns/s")
}
