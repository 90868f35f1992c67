package transport_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stated-dev/stated/providers/anthropic"
	"github.com/stated-dev/stated/providers/sim"
	"github.com/stated-dev/stated/session"
	"github.com/stated-dev/stated/storage"
	"github.com/stated-dev/stated/transport"
	"github.com/stated-dev/stated/transport/wire"
)

// statsReply is the body of GET /stats as a client reads it.
type statsReply struct {
	Time      time.Time `json:"time"`
	UptimeSec float64   `json:"uptime_sec"`
	Process   struct {
		CPUUserSec   float64 `json:"cpu_user_sec"`
		CPUSysSec    float64 `json:"cpu_sys_sec"`
		CPUSec       float64 `json:"cpu_sec"`
		RSSBytes     int64   `json:"rss_bytes"`
		GoHeapBytes  int64   `json:"go_heap_bytes"`
		GoStackBytes int64   `json:"go_stack_bytes"`
		GoSysBytes   int64   `json:"go_sys_bytes"`
		Goroutines   int     `json:"goroutines"`
		GCCycles     int64   `json:"gc_cycles"`
		OpenFDs      int     `json:"open_fds"`
	} `json:"process"`
	Connections      int   `json:"connections"`
	SessionsInMemory int   `json:"sessions_in_memory"`
	Turns            int64 `json:"turns"`
	Latency          struct {
		Added      statsHistogram `json:"added"`
		Relay      statsHistogram `json:"relay"`
		RelayFirst statsHistogram `json:"relay_first"`
		CommitWait statsHistogram `json:"commit_wait"`
		RelayPath  statsHistogram `json:"relay_path"`
	} `json:"latency"`
}

type statsHistogram struct {
	Count   int64        `json:"count"`
	SumMS   float64      `json:"sum_ms"`
	MaxMS   float64      `json:"max_ms"`
	Buckets [][2]float64 `json:"buckets"`
}

// check checks that the buckets hold count durations, ascend, and bound max.
func (h statsHistogram) check(t *testing.T, name string) {
	t.Helper()
	var total float64
	for i, b := range h.Buckets {
		total += b[1]
		if i > 0 && b[0] <= h.Buckets[i-1][0] {
			t.Errorf("%s: bucket bounds not ascending: %v", name, h.Buckets)
		}
	}
	if int64(total) != h.Count {
		t.Errorf("%s: buckets hold %v, count is %d", name, total, h.Count)
	}
	if n := len(h.Buckets); n > 0 && (h.MaxMS > h.Buckets[n-1][0] || h.MaxMS <= 0) {
		t.Errorf("%s: max %vms outside the last bucket (bound %vms)", name, h.MaxMS,
			h.Buckets[n-1][0])
	}
	if h.Count > 0 && (h.SumMS <= 0 || h.SumMS > float64(h.Count)*h.MaxMS*1.0001) {
		t.Errorf("%s: sum %vms for %d durations of at most %vms", name, h.SumMS, h.Count,
			h.MaxMS)
	}
}

// statsNode is a server whose sessions report their added time to it, over a real
// Badger directory and the Anthropic adapter talking HTTP to a real simulator.
type statsNode struct {
	t    *testing.T
	api  *transport.Server
	base string // http://127.0.0.1:port
	url  string // ws://127.0.0.1:port/v1/ws
}

func startStatsNode(t *testing.T, idle time.Duration) *statsNode {
	t.Helper()
	simSrv := httptest.NewServer(sim.New(sim.Options{}))
	t.Cleanup(simSrv.Close)
	provider := anthropic.New(anthropic.Config{BaseURL: simSrv.URL, APIKey: "test"})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := storage.OpenBadger(storage.DefaultBadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	var api *transport.Server
	mgr, err := session.NewManager(session.Config{Model: "claude-sonnet-4-5",
		MaxTokens: 256, Logger: quiet, IdleTimeout: idle,
		ObserveAdded:      func(d time.Duration) { api.ObserveAdded(d) },
		ObserveCommitWait: func(d time.Duration) { api.ObserveCommitWait(d) },
	}, store, provider)
	if err != nil {
		t.Fatal(err)
	}
	api, err = transport.NewServer(transport.Config{Logger: quiet}, mgr)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(api)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		api.Shutdown(ctx)
		hs.Close()
		mgr.Close(ctx)
		store.Close()
	})
	return &statsNode{t: t, api: api, base: hs.URL,
		url: "ws" + strings.TrimPrefix(hs.URL, "http") + "/v1/ws"}
}

// getStats reads GET /stats with key as bearer (none when empty).
func getStats(t *testing.T, base, query, key string) (int, statsReply) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/stats"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st statsReply
	if resp.StatusCode == http.StatusOK {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("content type %q, want application/json", ct)
		}
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, st
}

// waitStats polls GET /stats until ok holds, and returns the last reply.
func (n *statsNode) waitStats(what string, ok func(statsReply) bool) statsReply {
	n.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, st := getStats(n.t, n.base, "", "")
		if status != http.StatusOK {
			n.t.Fatalf("GET /stats: %d", status)
		}
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("stats never showed %s: %+v", what, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// converse sends turns on c one after the other and returns the delta frames it
// received.
func converse(c *rawConn, turns int) int {
	c.t.Helper()
	deltas := 0
	for i := range turns {
		c.send(fmt.Sprintf(`{"type":"turn","turn_id":"t%d","text":"Question %d?"}`, i, i))
		for {
			f := c.read()
			if f.Type == wire.TypeDelta {
				deltas++
			}
			if f.Type == wire.TypeError {
				c.t.Fatalf("turn %d: error frame %+v", i, f)
			}
			if f.Type == wire.TypeEvent && f.Event.Kind == "assistant" {
				break
			}
		}
	}
	return deltas
}

func TestStatsCountConnectionsTurnsAndTimings(t *testing.T) {
	n := startStatsNode(t, 0)
	_, before := getStats(t, n.base, "", "")
	if before.Connections != 0 || before.Turns != 0 || before.Latency.Added.Count != 0 {
		t.Fatalf("a new server reports %+v", before)
	}

	const turns = 3
	a, b := dialRaw(t, n.url), dialRaw(t, n.url)
	a.open()
	b.open()
	deltas := converse(a, turns) + converse(b, turns)
	if deltas < 2*turns {
		t.Fatalf("the client received %d deltas for %d answers", deltas, 2*turns)
	}

	const answers = 2 * turns
	st := n.waitStats("every relay", func(st statsReply) bool {
		return st.Latency.Relay.Count >= int64(deltas) &&
			st.Latency.RelayFirst.Count >= answers
	})
	switch {
	case st.Connections != 2:
		t.Errorf("connections %d, want 2", st.Connections)
	case st.SessionsInMemory != 2:
		t.Errorf("sessions in memory %d, want 2", st.SessionsInMemory)
	case st.Turns != answers:
		t.Errorf("turns %d, want %d", st.Turns, answers)
	case st.Latency.Added.Count != answers:
		t.Errorf("added count %d, want one per answer (%d)", st.Latency.Added.Count, answers)
	case st.Latency.RelayFirst.Count != answers:
		t.Errorf("relay_first count %d, want one per answer (%d)",
			st.Latency.RelayFirst.Count, answers)
	}
	st.Latency.Added.check(t, "added")
	st.Latency.Relay.check(t, "relay")
	st.Latency.RelayFirst.check(t, "relay_first")
	st.Latency.CommitWait.check(t, "commit_wait")
	st.Latency.RelayPath.check(t, "relay_path")
	// Every relayed delta has a path, which is at most its relay.
	if st.Latency.RelayPath.Count != st.Latency.Relay.Count ||
		st.Latency.RelayPath.MaxMS > st.Latency.Relay.MaxMS {
		t.Errorf("relay_path count %d, max %g ms; relay count %d, max %g ms: want the same "+
			"count and a max no larger", st.Latency.RelayPath.Count, st.Latency.RelayPath.MaxMS,
			st.Latency.Relay.Count, st.Latency.Relay.MaxMS)
	}
	if st.Latency.CommitWait.Count > st.Latency.Relay.Count {
		t.Errorf("commit_wait count %d over the relay count %d: at most one per delta",
			st.Latency.CommitWait.Count, st.Latency.Relay.Count)
	}
	checkProcess(t, st)

	a.ws.Close()
	n.waitStats("the closed connection", func(st statsReply) bool {
		return st.Connections == 1
	})
}

// checkProcess checks the process figures are those of a live process.
func checkProcess(t *testing.T, st statsReply) {
	t.Helper()
	p := st.Process
	if p.CPUSec <= 0 || p.CPUSec != p.CPUUserSec+p.CPUSysSec || p.Goroutines <= 0 ||
		p.GoHeapBytes <= 0 || p.GoStackBytes <= 0 || p.GoSysBytes < p.GoHeapBytes {
		t.Errorf("process figures %+v", p)
	}
	if p.RSSBytes <= 0 || p.OpenFDs <= 0 {
		t.Errorf("rss %d, open fds %d: want both read from /proc", p.RSSBytes, p.OpenFDs)
	}
	if st.UptimeSec <= 0 || time.Since(st.Time) > time.Minute || st.Time.After(time.Now()) {
		t.Errorf("time %v, uptime %vs", st.Time, st.UptimeSec)
	}
}

func TestStatsWithGCCollectsFirst(t *testing.T) {
	n := startStatsNode(t, 0)
	_, first := getStats(t, n.base, "", "")
	status, second := getStats(t, n.base, "?gc=1", "")
	if status != http.StatusOK || second.Process.GCCycles <= first.Process.GCCycles {
		t.Errorf("gc=1: status %d, gc cycles %d then %d; want a collection", status,
			first.Process.GCCycles, second.Process.GCCycles)
	}
}

func TestStatsNeedTheAdminKeyWhenAuthOrAnAdminKeyIsOn(t *testing.T) {
	open := startStatsNode(t, 0)
	authOff := startFinNode(t, finOpts{})
	authOn := startFinNode(t, finOpts{auth: true})
	tenantKey := authOn.tenantKey("acme")
	cases := []struct {
		name, base, query, key string
		want                   int
	}{
		{"no auth and no admin key: open", open.base, "", "", http.StatusOK},
		{"no auth and no admin key: open with gc", open.base, "?gc=1", "", http.StatusOK},
		{"an admin key without auth: refused without it", authOff.base, "", "",
			http.StatusForbidden},
		{"an admin key without auth: served with it", authOff.base, "", testAdminKey,
			http.StatusOK},
		{"auth on: no key is unauthorized", authOn.base, "", "", http.StatusUnauthorized},
		{"auth on: gc without a key is unauthorized", authOn.base, "?gc=1", "",
			http.StatusUnauthorized},
		{"auth on: a wrong key is unauthorized", authOn.base, "", "not-a-key",
			http.StatusUnauthorized},
		{"auth on: a tenant's key is forbidden", authOn.base, "", tenantKey,
			http.StatusForbidden},
		{"auth on: the admin key is served", authOn.base, "", testAdminKey, http.StatusOK},
		{"auth on: the admin key is served with gc", authOn.base, "?gc=1", testAdminKey,
			http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if status, _ := getStats(t, c.base, c.query, c.key); status != c.want {
				t.Errorf("GET /stats%s: %d, want %d", c.query, status, c.want)
			}
		})
	}
}

func TestASessionLeftAloneIsEvictedSoonAfterAOneSecondIdleTimeout(t *testing.T) {
	n := startStatsNode(t, time.Second)
	c := dialRaw(t, n.url)
	c.open()
	converse(c, 1)
	c.ws.Close()
	closed := time.Now()

	n.waitStats("the connection closed", func(st statsReply) bool {
		return st.Connections == 0
	})
	if _, st := getStats(t, n.base, "", ""); st.SessionsInMemory != 1 &&
		time.Since(closed) < time.Second {
		t.Fatalf("the session left memory %v after its connection closed, before the "+
			"idle timeout", time.Since(closed))
	}
	n.waitStats("the session evicted", func(st statsReply) bool {
		return st.SessionsInMemory == 0
	})
	if waited := time.Since(closed); waited > 3*time.Second {
		t.Errorf("evicted %v after the connection closed, want within about 1.25s", waited)
	}
}
