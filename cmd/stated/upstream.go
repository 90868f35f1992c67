package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/providers/openai"
)

// upstreamSettings say how the daemon talks to providers: retries, timeouts, the
// default fallback list, and which OpenAI API and server dialect to speak.
type upstreamSettings struct {
	Retries        int           // --retries, STATED_RETRIES: retries after the first attempt
	RequestTimeout time.Duration // --request-timeout, STATED_REQUEST_TIMEOUT: until the first delta
	FallbackModels string        // --fallback-models, STATED_FALLBACK_MODELS: comma-separated
	OpenAIAPI      string        // --openai-api, STATED_OPENAI_API: chat or responses
	OpenAICompat   string        // --openai-compat, STATED_OPENAI_COMPAT: a preset name
	// IdleConns is --upstream-idle-conns, STATED_UPSTREAM_IDLE_CONNS: idle connections
	// kept to each provider host.
	IdleConns int
}

// Bounds of the upstream settings.
const (
	maxRetries        = 10
	maxRequestTimeout = time.Hour
)

func (c *serveConfig) upstreamFlags(fs *flag.FlagSet) {
	u := &c.Upstream
	fs.IntVar(&u.Retries, "retries", c.envInt("STATED_RETRIES", 2),
		"retries of a provider request that failed before its answer started (0 to 10)")
	fs.DurationVar(&u.RequestTimeout, "request-timeout", c.envDuration("STATED_REQUEST_TIMEOUT",
		2*time.Minute), "how long one attempt may take to start answering (0: no bound)")
	fs.StringVar(&u.FallbackModels, "fallback-models", env("STATED_FALLBACK_MODELS", ""),
		"models tried in order when a session's model fails before answering, "+
			"comma-separated; a session's fallback_models replace them")
	fs.StringVar(&u.OpenAIAPI, "openai-api", env("STATED_OPENAI_API", "chat"),
		"the OpenAI API to speak: chat (Chat Completions) or responses")
	fs.StringVar(&u.OpenAICompat, "openai-compat", env("STATED_OPENAI_COMPAT", "openai"),
		"the server behind OPENAI_BASE_URL: openai, vllm, llamacpp or ollama")
	fs.IntVar(&u.IdleConns, "upstream-idle-conns", c.envInt("STATED_UPSTREAM_IDLE_CONNS",
		providers.DefaultIdleConnsPerHost), fmt.Sprintf("idle connections kept open to each "+
		"provider host for the next requests (1 to %d)", providers.MaxIdleConnsPerHost))
}

// validate checks the settings against their bounds.
func (u *upstreamSettings) validate() error {
	switch {
	case u.Retries < 0 || u.Retries > maxRetries:
		return fmt.Errorf("%w: --retries must be between 0 and %d", errUsage, maxRetries)
	case u.RequestTimeout < 0 || u.RequestTimeout > maxRequestTimeout:
		return fmt.Errorf("%w: --request-timeout must be between 0 and %v", errUsage,
			maxRequestTimeout)
	case u.OpenAIAPI != "chat" && u.OpenAIAPI != "responses":
		return fmt.Errorf("%w: --openai-api must be chat or responses", errUsage)
	case u.IdleConns < 1 || u.IdleConns > providers.MaxIdleConnsPerHost:
		return fmt.Errorf("%w: --upstream-idle-conns must be between 1 and %d", errUsage,
			providers.MaxIdleConnsPerHost)
	case u.OpenAIAPI == "responses" && u.OpenAICompat != "openai":
		return fmt.Errorf("%w: --openai-api responses speaks only to the OpenAI API "+
			"(--openai-compat openai)", errUsage)
	}
	if _, err := openai.Preset(u.OpenAICompat); err != nil {
		return fmt.Errorf("%w: --openai-compat: %v", errUsage, err)
	}
	fallback := splitList(u.FallbackModels)
	if len(fallback) > providers.MaxFallbackModels {
		return fmt.Errorf("%w: --fallback-models takes at most %d models", errUsage,
			providers.MaxFallbackModels)
	}
	for i, m := range fallback {
		if slices.Contains(fallback[:i], m) {
			return fmt.Errorf("%w: --fallback-models names %q twice", errUsage, m)
		}
	}
	return nil
}

// httpClient returns the client every adapter of the server sends its requests
// through: one pool of upstream connections for the process.
func (u *upstreamSettings) httpClient() (*http.Client, error) {
	client, err := providers.NewHTTPClient(providers.HTTPClientOptions{
		IdleConnsPerHost: u.IdleConns})
	if err != nil {
		return nil, fmt.Errorf("%w: --upstream-idle-conns: %v", errUsage, err)
	}
	return client, nil
}

// openAI returns the OpenAI adapter the settings choose, for cfg.
func (u *upstreamSettings) openAI(cfg openai.Config) providers.Provider {
	if u.OpenAIAPI == "responses" {
		return openai.NewResponses(cfg)
	}
	compat, err := openai.Preset(u.OpenAICompat)
	if err == nil { // validate has refused an unknown preset already
		cfg.Compat = &compat
	}
	return openai.New(cfg)
}

// wrap puts retries and fallback around p, and checks that p serves every default
// fallback model.
func (u *upstreamSettings) wrap(p providers.Provider,
	log *slog.Logger) (providers.Provider, error) {
	fallback := splitList(u.FallbackModels)
	if mc, ok := p.(providers.ModelChecker); ok {
		for _, m := range fallback {
			if !mc.Serves(m) {
				return nil, fmt.Errorf("%w: --fallback-models: no provider serves %q",
					errUsage, m)
			}
		}
	}
	retrier := providers.NewRetrier(p, providers.RetryPolicy{
		Attempts:       u.Retries + 1,
		BaseDelay:      500 * time.Millisecond,
		MaxDelay:       30 * time.Second,
		AttemptTimeout: u.RequestTimeout,
		Logger:         log,
	})
	return providers.NewFallback(retrier, fallback, log), nil
}
