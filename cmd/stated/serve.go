package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/providers/anthropic"
	"github.com/stated-dev/stated/providers/openai"
	"github.com/stated-dev/stated/providers/sim"
	"github.com/stated-dev/stated/session"
	"github.com/stated-dev/stated/storage"
	"github.com/stated-dev/stated/transport"
)

func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, inv, err := parseServe(args, stderr)
	if err != nil {
		return err
	}
	if inv.printConfig {
		return printConfig(stdout, cfg, inv)
	}
	level, _ := parseLevel(cfg.LogLevel)
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	return serve(ctx, cfg, log)
}

// serve runs the server until ctx is cancelled, then shuts down in order: stop
// accepting connections, close the WebSockets, drain running answers, close the
// store.
func serve(ctx context.Context, cfg *serveConfig, log *slog.Logger) error {
	provider, stopProvider, err := startProvider(cfg, log)
	if err != nil {
		return err
	}
	defer stopProvider()
	if provider, err = cfg.Upstream.wrap(provider, log); err != nil {
		return err
	}

	store, err := storage.OpenBadger(storage.DefaultBadgerOptions(cfg.DataDir))
	if err != nil {
		return fmt.Errorf("open data directory: %w", err)
	}
	defer store.Close()
	kv, err := store.KV() // one per store, shared by everything that keeps records
	if err != nil {
		return fmt.Errorf("open data directory: %w", err)
	}
	fin, err := openFinOps(cfg, kv, log)
	if err != nil {
		return err
	}
	// In a cluster the session logs live in JetStream; leave() runs after the
	// shutdown's drain, before the local store closes.
	logs, cl, err := joinCluster(ctx, cfg.Cluster, store, log)
	if err != nil {
		return err
	}
	defer cl.leave()

	var stats atomic.Pointer[transport.Server] // takes the added times once made
	sessions, err := session.NewManager(session.Config{
		Model: cfg.Model, MaxTokens: cfg.MaxTokens, Logger: log, IdleTimeout: cfg.IdleTimeout,
		ObserveAdded: func(d time.Duration) {
			if s := stats.Load(); s != nil {
				s.ObserveAdded(d)
			}
		},
		ObserveCommitWait: func(d time.Duration) {
			if s := stats.Load(); s != nil {
				s.ObserveCommitWait(d)
			}
		},
		Cost:    priceWith(fin.prices),
		Context: cfg.Savings.policy(), Presets: kv, Now: cfg.simNow,
		CacheKeyRPM: cfg.Savings.CacheKeyRPM,
		Ledger:      fin.ledger, Budgets: fin.budgets, Guard: cfg.FinOps.guard(),
		Ownership: cl.ownership(),
	}, logs, provider)
	if err != nil {
		return err
	}
	cl.bind(sessions)
	if _, err := sessions.RecoverLedger(ctx); err != nil {
		return fmt.Errorf("recover the ledger: %w", err)
	}
	tc, err := fin.transportConfig(ctx, cfg, transport.Config{
		ReadLimit: cfg.ReadLimit, AllowedOrigins: splitList(cfg.Origins), Logger: log,
		KV: kv,
	}, log)
	if err != nil {
		return err
	}
	api, err := transport.NewServer(tc, sessions)
	if err != nil {
		return err
	}
	stats.Store(api)
	if err := cl.serveRelays(api); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	log.Info("stated listening", "addr", ln.Addr().String(), "data", cfg.DataDir,
		"provider", cfg.Provider, "model", cfg.Model, "auth", tc.Auth)

	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	}
	return shutdown(hs, api, sessions, cfg.DrainTimeout, log)
}

func shutdown(hs *http.Server, api *transport.Server, sessions *session.Manager,
	drain time.Duration, log *slog.Logger) error {
	log.Info("shutting down", "drain_timeout", drain)
	ctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := hs.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http shutdown", "err", err)
	}
	if err := api.Shutdown(ctx); err != nil {
		log.Warn("websocket shutdown", "err", err)
	}
	if err := sessions.Close(ctx); err != nil {
		log.Warn("answers cut short", "err", err)
	}
	log.Info("stopped")
	return nil
}

// startProvider builds the provider the configuration names. For "sim" it starts
// the simulator on a loopback port, so the adapters talk real HTTP to it. Every
// adapter, the summary model's included (it is served by the same ones), sends
// through one pooled upstream client, whose idle connections the returned stop
// closes.
func startProvider(cfg *serveConfig, log *slog.Logger) (providers.Provider, func(), error) {
	client, err := cfg.Upstream.httpClient()
	if err != nil {
		return nil, nil, err
	}
	switch cfg.Provider {
	case "anthropic":
		p := anthropic.New(anthropic.Config{BaseURL: cfg.AnthropicURL, APIKey: cfg.AnthropicKey,
			HTTPClient: client})
		log.Info("provider: anthropic", "base_url", orDefault(cfg.AnthropicURL,
			"https://api.anthropic.com"))
		return p, client.CloseIdleConnections, nil
	case "openai":
		p := cfg.Upstream.openAI(openai.Config{BaseURL: cfg.OpenAIURL, APIKey: cfg.OpenAIKey,
			HTTPClient: client})
		log.Info("provider: openai", "base_url", orDefault(cfg.OpenAIURL,
			"https://api.openai.com/v1"), "api", cfg.Upstream.OpenAIAPI,
			"compat", cfg.Upstream.OpenAICompat)
		return p, client.CloseIdleConnections, nil
	}

	replies, err := sim.LoadReplies(splitList(cfg.SimReplies)...)
	if err != nil {
		return nil, nil, fmt.Errorf("simulator replies: %w", err)
	}
	ln, err := net.Listen("tcp", orDefault(cfg.Savings.SimAddr, "127.0.0.1:0"))
	if err != nil {
		return nil, nil, fmt.Errorf("simulator listen: %w", err)
	}
	opts, err := cfg.Sim.options(replies, log)
	if err != nil {
		return nil, nil, err
	}
	simulator := sim.New(opts)
	if opts.Clock != nil {
		cfg.simNow = opts.Clock.Now // the sessions live in the simulator's time
	}
	hs := &http.Server{Handler: simulator, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	base := "http://" + ln.Addr().String()
	log.Info("no provider configured: using the built-in provider simulator",
		"sim_url", base, "replies", cfg.SimReplies, "manual_clock", cfg.Sim.ManualClock,
		"faults", cfg.Sim.Faults.String())
	router := providers.NewRouter(
		providers.Route{Prefixes: []string{"claude"},
			Provider: anthropic.New(anthropic.Config{BaseURL: base, APIKey: "sim",
				HTTPClient: client})},
		providers.Route{Provider: cfg.Upstream.openAI(openai.Config{BaseURL: base + "/v1",
			APIKey: "sim", HTTPClient: client})},
	)
	return router, func() { client.CloseIdleConnections(); simulator.Close(); hs.Close() }, nil
}

// priceWith prices provider usage with a price table.
func priceWith(t *finops.PriceTable) func(string, providers.Usage) (float64, error) {
	return func(model string, u providers.Usage) (float64, error) {
		return t.Cost(model, finops.Tokens{
			Input: u.InputTokens, CacheWrite5m: u.CacheWrite5mTokens,
			CacheWrite1h: u.CacheWrite1hTokens, CacheRead: u.CacheReadTokens,
			Output: u.OutputTokens,
		})
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
