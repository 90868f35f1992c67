package bench

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// contractExample is the /stats document of the contract.
const contractExample = `{
  "time": "2026-12-04T19:00:00.123456789Z",
  "uptime_sec": 12.5,
  "process": {
    "cpu_user_sec": 1.25, "cpu_sys_sec": 0.50, "cpu_sec": 1.75,
    "rss_bytes": 123456789,
    "go_heap_bytes": 1234567, "go_stack_bytes": 123456, "go_sys_bytes": 12345678,
    "goroutines": 123, "gc_cycles": 42, "open_fds": 56
  },
  "connections": 100,
  "sessions_in_memory": 100,
  "turns": 12345,
  "latency": {
    "added":       {"count": 13, "sum_ms": 250.5, "max_ms": 3.2,
                    "buckets": [[0.0155, 3], [0.016, 10]]},
    "relay":       {"count": 0, "sum_ms": 0, "max_ms": 0, "buckets": []},
    "relay_first": {"count": 0, "sum_ms": 0, "max_ms": 0, "buckets": []}
  }
}`

// fakeStatsServer is an in-memory stand-in for the server's /stats, for unit
// tests only: it serves body with status to requests that carry the key, and
// records the last query.
func fakeStatsServer(t *testing.T, key string, status int, body string) (*httptest.Server,
	*string) {
	t.Helper()
	var query string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/stats" {
			http.NotFound(w, r)
			return
		}
		query = r.URL.RawQuery
		if key != "" && r.Header.Get("Authorization") != "Bearer "+key {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv, &query
}

func wsURL(srv *httptest.Server) string {
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/ws"
}

func TestStatsReadsTheContractsDocument(t *testing.T) {
	srv, query := fakeStatsServer(t, "admin-key", http.StatusOK, contractExample)
	c, err := newStatsClient(wsURL(srv), "admin-key")
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.fetch(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	if *query != "gc=1" {
		t.Errorf("query %q, want gc=1", *query)
	}
	if s.Process.CPUSec != 1.75 || s.Process.RSSBytes != 123456789 ||
		s.Process.GoStackBytes != 123456 || s.Connections != 100 ||
		s.SessionsInMemory != 100 || s.Turns != 12345 {
		t.Errorf("figures misread: %+v", s)
	}
	added := s.Latency[HistAdded]
	if added.Count != 13 || len(added.Buckets) != 2 || added.Buckets[1] != (Bucket{0.016, 10}) {
		t.Errorf("added misread: %+v", added)
	}
	if s.figures().Latency != nil || s.Latency == nil {
		t.Error("figures() must drop the histograms of a copy only")
	}
}

func TestStatsFailuresSayWhatToDo(t *testing.T) {
	tests := []struct {
		name   string
		key    string
		status int
		body   string
		want   string
	}{
		{"a refused read asks for the admin key", "other-key", 200, contractExample,
			"--admin-key"},
		{"a server without the endpoint says so", "", 404, "", "no GET /stats"},
		{"a server error gives its status", "", 500, "", "answered 500"},
		{"a document that is not JSON is malformed", "", 200, "<html>", "malformed"},
		{"a document without latency is refused", "", 200, `{"time":"2026-01-01T00:00:00Z"}`,
			"no time or no latency"},
		{"buckets that do not add up are refused", "", 200, strings.Replace(contractExample,
			`"count": 13`, `"count": 14`, 1), "histogram added"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := fakeStatsServer(t, tt.key, tt.status, tt.body)
			c, err := newStatsClient(wsURL(srv), "admin-key")
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.fetch(context.Background(), false)
			if !errors.Is(err, ErrStats) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want ErrStats saying %q", err, tt.want)
			}
		})
	}
}

func TestRunFailsAtOnceWithoutStats(t *testing.T) {
	srv, _ := fakeStatsServer(t, "", http.StatusNotFound, "")
	o := DefaultOptions()
	o.Server = wsURL(srv)
	if _, err := Run(context.Background(), o); !errors.Is(err, ErrStats) {
		t.Fatalf("err %v, want ErrStats", err)
	}
}
