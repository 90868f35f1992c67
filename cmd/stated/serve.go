package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
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

func serveCmd(ctx context.Context, args []string, stderr io.Writer) error {
	var cfg serveConfig
	fs := flag.NewFlagSet("stated serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if err := cfg.resolve(); err != nil {
		return err
	}
	level, _ := parseLevel(cfg.LogLevel)
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	return serve(ctx, &cfg, log)
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

	store, err := storage.OpenBadger(storage.DefaultBadgerOptions(cfg.DataDir))
	if err != nil {
		return fmt.Errorf("open data directory: %w", err)
	}
	defer store.Close()

	sessions, err := session.NewManager(session.Config{
		Model: cfg.Model, MaxTokens: cfg.MaxTokens, Logger: log,
		Cost: priceWith(finops.DefaultPrices()),
	}, store, provider)
	if err != nil {
		return err
	}
	api, err := transport.NewServer(transport.Config{
		ReadLimit: cfg.ReadLimit, AllowedOrigins: splitList(cfg.Origins), Logger: log,
	}, sessions)
	if err != nil {
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
		"provider", cfg.Provider, "model", cfg.Model)

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
// the simulator on a loopback port, so the adapters talk real HTTP to it.
func startProvider(cfg *serveConfig, log *slog.Logger) (providers.Provider, func(), error) {
	switch cfg.Provider {
	case "anthropic":
		p := anthropic.New(anthropic.Config{BaseURL: cfg.AnthropicURL, APIKey: cfg.AnthropicKey})
		log.Info("provider: anthropic", "base_url", orDefault(cfg.AnthropicURL,
			"https://api.anthropic.com"))
		return p, func() {}, nil
	case "openai":
		p := openai.New(openai.Config{BaseURL: cfg.OpenAIURL, APIKey: cfg.OpenAIKey})
		log.Info("provider: openai", "base_url", orDefault(cfg.OpenAIURL,
			"https://api.openai.com/v1"))
		return p, func() {}, nil
	}

	replies, err := sim.LoadReplies(splitList(cfg.SimReplies)...)
	if err != nil {
		return nil, nil, fmt.Errorf("simulator replies: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("simulator listen: %w", err)
	}
	hs := &http.Server{Handler: sim.New(sim.Options{Replies: replies, Logger: log}),
		ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	base := "http://" + ln.Addr().String()
	log.Info("no provider configured: using the built-in provider simulator",
		"sim_url", base, "replies", cfg.SimReplies)
	router := providers.NewRouter(
		providers.Route{Prefixes: []string{"claude"},
			Provider: anthropic.New(anthropic.Config{BaseURL: base, APIKey: "sim"})},
		providers.Route{Provider: openai.New(openai.Config{BaseURL: base + "/v1", APIKey: "sim"})},
	)
	return router, func() { hs.Close() }, nil
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
