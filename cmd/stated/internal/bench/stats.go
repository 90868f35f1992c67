package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Stats is the document GET /stats serves: the server process's figures and its
// latency histograms, counted since it started.
type Stats struct {
	Time             time.Time `json:"time"`
	UptimeSec        float64   `json:"uptime_sec"`
	Process          Process   `json:"process"`
	Connections      int64     `json:"connections"`
	SessionsInMemory int64     `json:"sessions_in_memory"`
	Turns            int64     `json:"turns"`
	// Latency holds the histograms "added", "relay", "relay_first" and
	// "commit_wait" (absent from servers that predate it); nil in the
	// copies a Result carries, which keep only the figures.
	Latency map[string]Histogram `json:"latency,omitempty"`
}

// Process is what the server process reports of itself.
type Process struct {
	CPUUserSec   float64 `json:"cpu_user_sec"`
	CPUSysSec    float64 `json:"cpu_sys_sec"`
	CPUSec       float64 `json:"cpu_sec"`
	RSSBytes     int64   `json:"rss_bytes"`
	GoHeapBytes  int64   `json:"go_heap_bytes"`
	GoStackBytes int64   `json:"go_stack_bytes"`
	GoSysBytes   int64   `json:"go_sys_bytes"`
	Goroutines   int64   `json:"goroutines"`
	GCCycles     int64   `json:"gc_cycles"`
	OpenFDs      int64   `json:"open_fds"`
}

// Names of the latency histograms of /stats.
const (
	HistAdded      = "added"
	HistRelay      = "relay"
	HistRelayFirst = "relay_first"
	HistCommitWait = "commit_wait"
	HistRelayPath  = "relay_path"
)

// figures returns s without its histograms, for a Result to carry.
func (s *Stats) figures() *Stats {
	if s == nil {
		return nil
	}
	c := *s
	c.Latency = nil
	return &c
}

// maxStatsBytes bounds the /stats document read; a histogram of a few hundred
// buckets is a few kilobytes.
const maxStatsBytes = 4 << 20

// statsTimeout bounds one read of /stats; the server answers within
// milliseconds unless it is stuck.
const statsTimeout = 10 * time.Second

// statsClient reads /stats from one server.
type statsClient struct {
	url      string // http(s)://host:port/stats
	adminKey string
	http     *http.Client
}

// newStatsClient returns the reader of /stats for the server at the WebSocket
// URL wsURL.
func newStatsClient(wsURL, adminKey string) (*statsClient, error) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return nil, fmt.Errorf("%w: server URL: %v", ErrInvalid, err)
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return nil, fmt.Errorf("%w: server URL %q is not ws:// or wss://", ErrInvalid, wsURL)
	}
	u.Path, u.RawQuery, u.Fragment = "/stats", "", ""
	return &statsClient{url: u.String(), adminKey: adminKey,
		http: &http.Client{Timeout: statsTimeout}}, nil
}

// fetch reads one snapshot; with gc the server collects garbage first, so
// that heap figures count live memory only.
func (c *statsClient) fetch(ctx context.Context, gc bool) (*Stats, error) {
	u := c.url
	if gc {
		u += "?gc=1"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStats, err)
	}
	if c.adminKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.adminKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStats, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxStatsBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the answer: %v", ErrStats, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("%w: GET /stats answered %d: give the admin key (--admin-key)",
			ErrStats, resp.StatusCode)
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%w: the server has no GET /stats", ErrStats)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%w: GET /stats answered %d", ErrStats, resp.StatusCode)
	case len(body) > maxStatsBytes:
		return nil, fmt.Errorf("%w: GET /stats answered more than %d bytes", ErrStats,
			maxStatsBytes)
	}
	return decodeStats(body)
}

// decodeStats parses a /stats document and checks that it is one.
func decodeStats(body []byte) (*Stats, error) {
	var s Stats
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, fmt.Errorf("%w: malformed document: %v", ErrStats, err)
	}
	if s.Time.IsZero() || s.Latency == nil {
		return nil, fmt.Errorf("%w: the document has no time or no latency", ErrStats)
	}
	for name, h := range s.Latency {
		if err := h.check(); err != nil {
			return nil, fmt.Errorf("%w: histogram %s: %v", ErrStats, name, err)
		}
	}
	return &s, nil
}
