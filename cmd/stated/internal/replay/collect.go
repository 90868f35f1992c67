package replay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/stated-dev/stated/transport/client"
)

// sessionRef names a session the replay opened.
type sessionRef struct {
	ID    string
	Epoch uint64
}

// simClock moves the provider simulator's manual clock, so that think time
// passes in simulated time: POST /_sim/clock {"advance_ms": N}.
type simClock struct {
	url    string
	client *http.Client
}

// newSimClock returns the clock of the simulator serving providerURL (its API
// root, with or without /v1).
func newSimClock(providerURL string) *simClock {
	base := strings.TrimSuffix(strings.TrimRight(providerURL, "/"), "/v1")
	return &simClock{url: base + "/_sim/clock", client: http.DefaultClient}
}

// advance moves the clock by d. It fails when the simulator has no manual clock.
func (c *simClock) advance(ctx context.Context, d time.Duration) error {
	body := fmt.Sprintf(`{"advance_ms":%d}`, d.Milliseconds())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url,
		bytes.NewReader([]byte(body)))
	if err != nil {
		return fmt.Errorf("replay: sim clock: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("replay: sim clock: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("replay: sim clock at %s: %s: %s (start the simulator with a "+
			"manual clock: stated serve --sim-manual-clock)", c.url, resp.Status,
			strings.TrimSpace(string(msg)))
	}
	return nil
}

// waitRollups polls the server's health endpoint until it runs no rollup, or
// ctx ends, or a minute passes: a rollup that follows a conversation's last turn
// is still paid for, and its cost belongs to the stated side.
func waitRollups(ctx context.Context, base string, header http.Header) error {
	deadline := time.Now().Add(time.Minute)
	for {
		n, err := rollupsRunning(ctx, base, header)
		if err != nil || n == 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replay: %d rollups still running after a minute", n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func rollupsRunning(ctx context.Context, base string, header http.Header) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	if err != nil {
		return 0, fmt.Errorf("replay: health: %w", err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("replay: health: %w", err)
	}
	defer resp.Body.Close()
	var h struct {
		RollupsRunning int `json:"rollups_running"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&h); err != nil {
		return 0, fmt.Errorf("replay: health: %w", err)
	}
	return h.RollupsRunning, nil
}

// bookRollups reads the log of every session and books its rollup events: the
// summaries' cost into the stated side's cost, their tokens apart.
func bookRollups(ctx context.Context, opts *Options, refs []sessionRef, res *Result) error {
	cfg := client.Config{Servers: opts.Servers, Header: opts.Header}
	for _, ref := range refs {
		sess, err := client.Resume(ctx, cfg, ref.ID, ref.Epoch, 0)
		if err != nil {
			return fmt.Errorf("replay: read session %s: %w", ref.ID, err)
		}
		for _, e := range sess.History() {
			if e.Kind != "rollup" {
				continue
			}
			res.Rollups++
			if e.Usage == nil {
				continue
			}
			res.RollupCostUSD += e.CostUSD
			res.RollupInputTokens += e.Usage.InputTokens + e.Usage.CacheReadTokens +
				e.Usage.CacheWrite5mTokens + e.Usage.CacheWrite1hTokens
			res.RollupOutputTokens += e.Usage.OutputTokens
		}
		sess.Close()
	}
	res.CostUSD += res.RollupCostUSD
	return nil
}
