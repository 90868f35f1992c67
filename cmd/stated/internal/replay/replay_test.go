package replay

import (
	"context"
	"io"
	"log/slog"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/providers/anthropic"
	"github.com/stated-dev/stated/providers/openai"
	"github.com/stated-dev/stated/providers/sim"
	"github.com/stated-dev/stated/session"
	"github.com/stated-dev/stated/storage"
	"github.com/stated-dev/stated/transport"
	"github.com/stated-dev/stated/transport/client"
)

func TestCeilingCountsTheLongestPrefixAnEarlierRequestSent(t *testing.T) {
	sys := chatMsg{Role: "system", Content: strings.Repeat("policy ", 1500)}
	a1 := []chatMsg{sys, {Role: "user", Content: "first question"}}
	a2 := append(append([]chatMsg(nil), a1...), chatMsg{Role: "assistant", Content: "yes"},
		chatMsg{Role: "user", Content: "second"})
	b1 := []chatMsg{sys, {Role: "user", Content: "another conversation"}}
	reqs := []ceilingRequest{ceilingOf("m", nil, a1), ceilingOf("m", nil, b1),
		ceilingOf("m", nil, a2)}
	sysTokens := reqs[0].ends[0]
	total := reqs[0].ends[1] + reqs[1].ends[1] + reqs[2].ends[3]
	// b1 reads the system prompt a1 sent; a2 reads all of a1.
	want := float64(sysTokens+reqs[0].ends[1]) / float64(total)
	if got := ceilingShare(reqs, 1024, false); math.Abs(got-want) > 1e-9 {
		t.Fatalf("ceiling %.4f, want %.4f", got, want)
	}
	if got := ceilingShare(reqs, 1e6, false); got != 0 {
		t.Fatalf("ceiling with a minimum above every prompt: %.4f, want 0", got)
	}
	steps := ceilingShare(reqs, 1024, true)
	if steps > want || steps < want-3*128.0/float64(total) {
		t.Fatalf("openai ceiling %.4f: want %.4f less at most three 128-token steps", steps,
			want)
	}
	other := []ceilingRequest{ceilingOf("other-model", nil, a1), ceilingOf("m", nil, a1)}
	if got := ceilingShare(other, 1024, false); got != 0 {
		t.Fatalf("a prefix of another model counts: %.4f", got)
	}
}

func TestStepsFollowTheRecording(t *testing.T) {
	c := Conversation{Messages: []ChatMessage{
		{Role: "system", Content: "s"}, {Role: "user", Content: "q"},
		{Role: "assistant"}, {Role: "tool", Content: "r1"}, {Role: "tool", Content: "r2"},
		{Role: "assistant", Content: "a"}, {Role: "user", Content: "  "},
		{Role: "user", Content: "q2"}, {Role: "assistant", Content: "b"},
	}}
	steps := c.steps()
	if len(steps) != 3 || steps[0].user != "q" || len(steps[1].results) != 2 ||
		steps[2].user != "q2" || c.assistantTurns() != 3 {
		t.Fatalf("steps %+v", steps)
	}
}

// testServer is a stated server in this process: sessions over a Badger store
// with presets, the real simulator behind the real adapters, the simulator
// reachable for the baselines, and its manual clock shared with the sessions.
type testServer struct {
	ws, sim string
}

func startTestServer(t *testing.T, api string, convFiles []string) *testServer {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	replies, err := sim.LoadReplies(convFiles...)
	if err != nil {
		t.Fatal(err)
	}
	clock := sim.NewManualClock(time.Unix(1.8e9, 0))
	simSrv := httptest.NewServer(sim.New(sim.Options{Replies: replies, Clock: clock}))
	t.Cleanup(simSrv.Close)
	var prov providers.Provider = anthropic.New(anthropic.Config{BaseURL: simSrv.URL,
		APIKey: "stated"})
	model := "claude-sonnet-4-5"
	if api == "openai" {
		prov = openai.New(openai.Config{BaseURL: simSrv.URL + "/v1", APIKey: "stated"})
		model = "gpt-4.1"
	}
	store, err := storage.OpenBadger(storage.DefaultBadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := store.KV()
	if err != nil {
		t.Fatal(err)
	}
	prices := finops.DefaultPrices()
	mgr, err := session.NewManager(session.Config{Model: model, Logger: quiet, Presets: kv,
		Now: clock.Now, Guard: session.Guard{MaxTurns: -1, RepeatRun: -1},
		Cost: func(m string, u providers.Usage) (float64, error) {
			return prices.Cost(m, finops.Tokens{Input: u.InputTokens,
				CacheWrite5m: u.CacheWrite5mTokens, CacheWrite1h: u.CacheWrite1hTokens,
				CacheRead: u.CacheReadTokens, Output: u.OutputTokens})
		}}, store, prov)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := transport.NewServer(transport.Config{Logger: quiet}, mgr)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		hs.Close()
		mgr.Close(ctx)
		store.Close()
	})
	base := simSrv.URL
	if api == "openai" {
		base += "/v1"
	}
	return &testServer{ws: "ws" + strings.TrimPrefix(hs.URL, "http") + "/v1/ws", sim: base}
}

func sharedConversations(t *testing.T, names ...string) []string {
	t.Helper()
	dir, err := filepath.Abs("../../../../../shared/data/conversations")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("shared data missing in CI: %v", err)
		}
		t.Skip("../shared/data is not here")
	}
	var out []string
	for _, n := range names {
		out = append(out, filepath.Join(dir, n+".jsonl"))
	}
	return out
}

func TestReplaySideBySideWithBothBaselines(t *testing.T) {
	files := sharedConversations(t, "taubench-airline", "sweagent-demo")
	for _, api := range []string{"anthropic", "openai"} {
		t.Run("in "+api+" mode", func(t *testing.T) {
			srv := startTestServer(t, api, files)
			convs, err := LoadFiles(files...)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Run(context.Background(), Options{Servers: []string{srv.ws},
				System: "You are helpful.", Concurrency: 4, Provider: api,
				ProviderURL: srv.sim, Baselines: []string{BaselineNaive, BaselineAuto}}, convs)
			if err != nil {
				t.Fatal(err)
			}
			checkSideBySide(t, api, res)
		})
	}
}

func checkSideBySide(t *testing.T, api string, res *Result) {
	t.Helper()
	naive, auto := res.Baselines[BaselineNaive], res.Baselines[BaselineAuto]
	if res.Errors+naive.Errors+auto.Errors != 0 {
		t.Fatalf("errors: %v %v %v", res.ErrorSamples(3), naive.ErrorSamples(3),
			auto.ErrorSamples(3))
	}
	if naive.Turns != res.Turns || auto.Turns != res.Turns || res.Diverged != 0 ||
		naive.OutputTokens != res.OutputTokens {
		t.Fatalf("the sides did not play the same turns: %d %d %d, diverged %d, output "+
			"%d and %d", res.Turns, naive.Turns, auto.Turns, res.Diverged, res.OutputTokens,
			naive.OutputTokens)
	}
	if api == "anthropic" && (naive.CachedInputTokens != 0 ||
		!(naive.CostUSD > auto.CostUSD && auto.CostUSD > res.CostUSD)) {
		t.Fatalf("costs: stated %.4f, naive %.4f (cached %d), auto %.4f", res.CostUSD,
			naive.CostUSD, naive.CachedInputTokens, auto.CostUSD)
	}
	if res.CeilingCachedShare <= 0 || res.CeilingCachedShare > 1 ||
		res.Ratios == nil || res.Ratios.CostVsAuto == 0 {
		t.Fatalf("ceiling %.3f, ratios %+v", res.CeilingCachedShare, res.Ratios)
	}
	if res.Long == nil || res.Long.Conversations == 0 || res.Long.AutoCostUSD == 0 {
		t.Fatalf("long conversations: %+v", res.Long)
	}
	if len(res.PerTurn) < 10 || res.Ratios.BytesFromTurn10 <= 0 ||
		res.Ratios.BytesFromTurn10 > 0.1 {
		t.Fatalf("per turn: %d turns, from turn 10 %.3f of stateless", len(res.PerTurn),
			res.Ratios.BytesFromTurn10)
	}
	if res.PerTurn[0].StatedBytes > res.PerTurn[0].StatelessBytes/4 {
		t.Fatalf("first turns: stated sent %d bytes, stateless %d: the open frame is "+
			"not small", res.PerTurn[0].StatedBytes, res.PerTurn[0].StatelessBytes)
	}
}

// TestThinkTimeMakesStatedChooseHourLongEntries spaces turns six minutes apart in
// the simulator's time: 5-minute entries would expire between turns, so stated
// writes hour-long ones once it has seen a pause, and the automatic-caching
// baseline, whose entries live five minutes, pays for writing them again.
func TestThinkTimeMakesStatedChooseHourLongEntries(t *testing.T) {
	files := sharedConversations(t, "taubench-airline")
	srv := startTestServer(t, "anthropic", files)
	convs, err := LoadFiles(files...)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), Options{Servers: []string{srv.ws},
		Concurrency: 4, ProviderURL: srv.sim, Baselines: []string{BaselineAuto},
		ThinkTime: 6 * time.Minute}, convs[:3])
	if err != nil {
		t.Fatal(err)
	}
	auto := res.Baselines[BaselineAuto]
	if auto.CachedInputTokens > auto.InputTokens/10 {
		t.Fatalf("auto read %d of %d prompt tokens from 5-minute entries six minutes "+
			"apart: the clock did not move", auto.CachedInputTokens, auto.InputTokens)
	}
	hour := 0
	for _, ref := range res.refs {
		s, err := client.Resume(context.Background(), client.Config{Servers: []string{srv.ws}},
			ref.ID, ref.Epoch, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range s.History() {
			if e.Usage != nil {
				hour += e.Usage.CacheWrite1hTokens
			}
		}
		s.Close()
	}
	if hour == 0 || res.CachedShare < 0.5 || res.CostUSD >= auto.CostUSD {
		t.Fatalf("stated wrote %d tokens for an hour, read %.2f of its prompt, cost %.4f "+
			"against auto's %.4f", hour, res.CachedShare, res.CostUSD, auto.CostUSD)
	}
}
