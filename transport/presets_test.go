package transport_test

import (
	"bytes"
	"context"
	"encoding/json"
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

// presetNode is a server whose sessions keep presets in the KV space of a real
// Badger store, talking HTTP to a real simulator.
type presetNode struct {
	http *httptest.Server
	ws   string
	sim  *sim.Server
}

func startPresetNode(t *testing.T) *presetNode {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	simulator := sim.New(sim.Options{})
	simSrv := httptest.NewServer(simulator)
	t.Cleanup(simSrv.Close)
	store, err := storage.OpenBadger(storage.DefaultBadgerOptions(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := store.KV()
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := session.NewManager(session.Config{Model: "claude-sonnet-4-5", MaxTokens: 256,
		Logger: quiet, Presets: kv},
		store, anthropic.New(anthropic.Config{BaseURL: simSrv.URL, APIKey: "test"}))
	if err != nil {
		t.Fatal(err)
	}
	api, err := transport.NewServer(transport.Config{Logger: quiet}, mgr)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		api.Shutdown(ctx)
		srv.Close()
		mgr.Close(ctx)
		store.Close()
	})
	return &presetNode{http: srv, ws: "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/ws",
		sim: simulator}
}

// do sends an HTTP request and decodes the JSON answer into out.
func (n *presetNode) do(t *testing.T, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, n.http.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %s: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

func TestPresetsOverHTTP(t *testing.T) {
	n := startPresetNode(t)
	var p transport.PresetJSON
	body := `{"system":"You help with billing.","tools":[{"name":"lookup","input_schema":` +
		`{ "type": "object" }}],"context":{"rollup_high_tokens":20000}}`
	if code := n.do(t, "PUT", "/v1/presets/billing", body, &p); code != 200 || p.Version != 1 ||
		p.Context.RollupHighTokens != 20000 || p.Model != "claude-sonnet-4-5" {
		t.Fatalf("PUT: %d %+v", code, p)
	}
	if code := n.do(t, "PUT", "/v1/presets/billing", body, &p); code != 200 || p.Version != 1 {
		t.Fatalf("PUT again: %d, version %d; want the same version", code, p.Version)
	}
	n.do(t, "PUT", "/v1/presets/billing", `{"system":"You help with refunds."}`, &p)
	if p.Version != 2 {
		t.Fatalf("changed preset: version %d, want 2", p.Version)
	}
	var got transport.PresetJSON
	if code := n.do(t, "GET", "/v1/presets/billing?version=1", "", &got); code != 200 ||
		got.System != "You help with billing." || string(got.Tools[0].InputSchema) !=
		`{"type":"object"}` {
		t.Fatalf("GET version 1: %d %+v", code, got)
	}
	var list struct{ Presets []transport.PresetJSON }
	if n.do(t, "GET", "/v1/presets", "", &list); len(list.Presets) != 1 ||
		list.Presets[0].Version != 2 {
		t.Fatalf("list: %+v", list)
	}
	var e struct{ Error struct{ Code string } }
	for _, tc := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"GET", "/v1/presets/nope", "", 404, wire.CodePresetNotFound},
		{"GET", "/v1/presets/billing?version=x", "", 400, wire.CodeInvalid},
		{"PUT", "/v1/presets/bad%20name", `{}`, 400, wire.CodeInvalid},
		{"PUT", "/v1/presets/x", `{"system":1}`, 400, wire.CodeBadFrame},
		{"PUT", "/v1/presets/x", `{"unknown":1}`, 400, wire.CodeBadFrame},
		{"PUT", "/v1/presets/x", `{"system":"` + strings.Repeat("a", 3<<20) + `"}`, 413,
			wire.CodeInvalid},
	} {
		if code := n.do(t, tc.method, tc.path, tc.body, &e); code != tc.status ||
			e.Error.Code != tc.code {
			t.Fatalf("%s %s: %d %q, want %d %q", tc.method, tc.path, code, e.Error.Code,
				tc.status, tc.code)
		}
	}
}

func TestSessionOpensByPresetWithASmallFirstFrame(t *testing.T) {
	n := startPresetNode(t)
	system := strings.Repeat("Policy line. ", 600)
	c := dialRaw(t, n.ws)
	reg, _ := json.Marshal(map[string]any{"type": "preset", "preset": "support",
		"system": system})
	c.send(string(reg))
	if f := c.until(wire.TypePreset); f.Preset != "support" || f.PresetVersion != 1 ||
		f.Digest == "" {
		t.Fatalf("preset frame: %+v", f)
	}

	open := `{"type":"open","preset":"support"}`
	c.send(open)
	s := c.until(wire.TypeSession)
	if s.Preset != "support" || s.PresetVersion != 1 {
		t.Fatalf("session frame: %+v", s)
	}
	if len(open) > 64 || len(system) < 7000 {
		t.Fatal("the test's open frame is not small next to the system prompt")
	}
	c.send(`{"type":"turn","turn_id":"t1","text":"hello"}`)
	c.answer()
	last := n.sim.Captured()[len(n.sim.Captured())-1]
	if !bytes.Contains(last.Body, []byte("Policy line. Policy line.")) {
		t.Fatal("the preset's system prompt did not reach the provider")
	}

	c.send(`{"type":"open","preset":"missing"}`)
	if f := c.until(wire.TypeError); f.Code != wire.CodePresetNotFound || f.Retry {
		t.Fatalf("open by a missing preset: %+v", f)
	}
	c.send(`{"type":"open","preset":"support","system":"mine"}`)
	if f := c.until(wire.TypeError); f.Code != wire.CodeInvalid {
		t.Fatalf("open by preset with a system prompt: %+v", f)
	}
}

func TestPinAndHistoryFrames(t *testing.T) {
	n := startPresetNode(t)
	c := dialRaw(t, n.ws)
	c.open()
	c.send(`{"type":"turn","turn_id":"t1","text":"remember 42","pin":true}`)
	ack := c.until(wire.TypeAck)
	c.answer()
	c.send(`{"type":"turn","turn_id":"t2","text":"and more"}`)
	c.answer()

	c.send(`{"type":"pin","seq":4}`)
	pin := c.until(wire.TypeAck)
	if pin.Seq != 5 || pin.Duplicate {
		t.Fatalf("pin ack: %+v, want seq 5", pin)
	}
	c.send(`{"type":"pin","seq":4}`)
	if again := c.until(wire.TypeAck); again.Seq != 5 || !again.Duplicate {
		t.Fatalf("pin again: %+v, want a duplicate ack of seq 5", again)
	}
	c.send(`{"type":"pin","seq":99}`)
	if f := c.until(wire.TypeError); f.Code != wire.CodeNotPinnable {
		t.Fatalf("pin past the log: %+v", f)
	}

	c.send(`{"type":"history","after_seq":0,"limit":2}`)
	h := c.until(wire.TypeHistory)
	if len(h.Events) != 2 || !h.More || h.Seq != 5 || !h.Events[0].Pinned ||
		h.Events[0].Seq != ack.Seq {
		t.Fatalf("history page: %+v", h)
	}
	c.send(`{"type":"history","after_seq":2}`)
	h = c.until(wire.TypeHistory)
	if len(h.Events) != 3 || h.More || h.Events[2].Kind != "pin" || h.Events[2].Target != 4 {
		t.Fatalf("history rest: %+v", h)
	}
	c.send(`{"type":"history","limit":5000}`)
	if f := c.until(wire.TypeError); f.Code != wire.CodeInvalid {
		t.Fatalf("history over the limit: %+v", f)
	}
}
