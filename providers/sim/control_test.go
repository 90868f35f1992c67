package sim

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestTheClockControlExpiresCacheEntries(t *testing.T) {
	clock := NewManualClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := New(Options{Clock: clock})
	srv := startHandler(t, s)
	req := messagesReq(sonnet, []map[string]any{marked(text(longText(1200)))},
		msg("user", text("Hi.")))
	sendMessages(t, srv, "k", req)

	resp, body := do(t, srv, http.MethodPost, clockPath, `{"advance_ms": 299000}`)
	var now struct {
		Now    time.Time `json:"now"`
		Manual bool      `json:"manual"`
	}
	if err := json.Unmarshal(body, &now); err != nil || resp.StatusCode != 200 ||
		!now.Manual || !now.Now.Equal(clock.Now()) ||
		clock.Now().Sub(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) != 299*time.Second {
		t.Fatalf("POST %s: %d %s", clockPath, resp.StatusCode, body)
	}
	if m := sendMessages(t, srv, "k", req); m.Usage.CacheReadInputTokens == 0 {
		t.Fatalf("the entry expired before 5 minutes")
	}
	do(t, srv, http.MethodPost, clockPath, `{"advance_ms": 300001}`)
	if m := sendMessages(t, srv, "k", req); m.Usage.CacheReadInputTokens != 0 {
		t.Errorf("the entry outlived 5 idle minutes")
	}
}

func TestTheClockControlRefusesWhatItCannotDo(t *testing.T) {
	manual := NewManualClock(time.Unix(0, 0))
	tests := []struct {
		name   string
		clock  Clock
		method string
		path   string
		body   string
		status int
	}{
		{"the wall clock cannot be moved", nil, http.MethodPost, clockPath,
			`{"advance_ms": 1}`, http.StatusConflict},
		{"a clock does not go back", manual, http.MethodPost, clockPath,
			`{"advance_ms": -1}`, http.StatusBadRequest},
		{"the amount is required", manual, http.MethodPost, clockPath, `{}`,
			http.StatusBadRequest},
		{"the body is JSON", manual, http.MethodPost, clockPath, `advance`,
			http.StatusBadRequest},
		{"a huge advance is refused", manual, http.MethodPost, clockPath,
			`{"advance_ms": 99999999999999}`, http.StatusBadRequest},
		{"the clock is not put", manual, http.MethodPut, clockPath, `{}`,
			http.StatusMethodNotAllowed},
		{"an unknown control is not found", manual, http.MethodGet, "/_sim/other", ``,
			http.StatusNotFound},
		{"the wall clock can be read", nil, http.MethodGet, clockPath, ``, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startHandler(t, New(Options{Clock: tt.clock}))
			resp, body := do(t, srv, tt.method, tt.path, tt.body)
			if resp.StatusCode != tt.status {
				t.Errorf("%d %s, want %d", resp.StatusCode, body, tt.status)
			}
			if tt.status >= 400 && !strings.Contains(string(body), `"error"`) {
				t.Errorf("error body %s", body)
			}
		})
	}
	if !manual.Now().Equal(time.Unix(0, 0)) {
		t.Errorf("a refused advance moved the clock to %s", manual.Now())
	}
}
