package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// serveConfig is the daemon's configuration. Each field has a flag and an
// environment variable; a flag given on the command line wins over the variable,
// which wins over the default.
type serveConfig struct {
	Addr       string // --addr, STATED_ADDR: where to listen
	DataDir    string // --data, STATED_DATA: the Badger directory
	Provider   string // --provider, STATED_PROVIDER: sim, anthropic, openai
	Model      string // --model, STATED_MODEL: default model of new sessions
	MaxTokens  int    // --max-tokens, STATED_MAX_TOKENS
	ReadLimit  int64  // --read-limit, STATED_READ_LIMIT: largest client frame
	Origins    string // --allow-origin, STATED_ALLOW_ORIGIN: comma-separated
	SimReplies string // --sim-replies, STATED_SIM_REPLIES: comma-separated files
	// Sim: --sim-manual-clock, --sim-latency-*, --sim-fault, --sim-fault-seed,
	// --sim-max-captures and STATED_SIM_* (see simSettings in sim.go).
	Sim simSettings
	// Upstream: --retries, --request-timeout, --fallback-models, --openai-api,
	// --openai-compat, --upstream-idle-conns and their STATED_* variables (see
	// upstream.go).
	Upstream upstreamSettings
	// FinOps: --auth, --admin-key, --ticket-ttl, --prices, --guard-* and their
	// STATED_* variables (see finops_config.go).
	FinOps finopsSettings
	// Savings: --sim-addr, --rollup-*, --summary-model, --ration-*, --dedup-min-tokens
	// and their STATED_* variables (see savings.go).
	Savings savingsSettings
	// Cluster: --nats, --node, --replicas, --lease-ttl and their STATED_*
	// variables (see cluster.go).
	Cluster clusterSettings
	// simNow is the in-process simulator's clock when it has a manual one, which
	// the sessions then read too: set by startProvider.
	simNow       func() time.Time
	LogLevel     string        // --log-level, STATED_LOG_LEVEL: debug, info, warn, error
	DrainTimeout time.Duration // --drain-timeout, STATED_DRAIN_TIMEOUT
	IdleTimeout  time.Duration // --idle-timeout, STATED_IDLE_TIMEOUT: idle session in memory

	AnthropicKey, AnthropicURL string // ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL
	OpenAIKey, OpenAIURL       string // OPENAI_API_KEY, OPENAI_BASE_URL

	envErr error // the first environment variable that did not parse
}

const (
	defaultAnthropicModel = "claude-sonnet-4-5"
	defaultOpenAIModel    = "gpt-4.1"
)

func (c *serveConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", env("STATED_ADDR", "127.0.0.1:8080"), "listen address")
	fs.StringVar(&c.DataDir, "data", env("STATED_DATA", "./stated-data"), "data directory")
	fs.StringVar(&c.Provider, "provider", env("STATED_PROVIDER", ""),
		"sim, anthropic or openai (default: anthropic or openai if its API key is set, else sim)")
	fs.StringVar(&c.Model, "model", env("STATED_MODEL", ""),
		"default model (default "+defaultAnthropicModel+", or "+defaultOpenAIModel+" for openai)")
	fs.IntVar(&c.MaxTokens, "max-tokens", c.envInt("STATED_MAX_TOKENS", 4096),
		"default max_tokens of an answer")
	fs.Int64Var(&c.ReadLimit, "read-limit", int64(c.envInt("STATED_READ_LIMIT", 1<<20)),
		"largest WebSocket frame a client may send, in bytes")
	fs.StringVar(&c.Origins, "allow-origin", env("STATED_ALLOW_ORIGIN", ""),
		"browser origins allowed besides the server's own host, comma-separated")
	fs.StringVar(&c.SimReplies, "sim-replies", env("STATED_SIM_REPLIES", ""),
		"conversation files (OpenAI chat JSONL) the built-in simulator answers from")
	c.Sim.register(fs, "sim-", "STATED_SIM_", &c.envErr)
	c.upstreamFlags(fs)
	c.finopsFlags(fs)
	c.savingsFlags(fs)
	c.clusterFlags(fs)
	fs.StringVar(&c.LogLevel, "log-level", env("STATED_LOG_LEVEL", "info"),
		"debug, info, warn or error")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", c.envDuration("STATED_DRAIN_TIMEOUT",
		30*time.Second), "how long shutdown waits for running answers")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", c.envDuration("STATED_IDLE_TIMEOUT",
		10*time.Minute), "how long a session with no connection and no answer stays in memory")
	c.AnthropicKey, c.AnthropicURL = os.Getenv("ANTHROPIC_API_KEY"), os.Getenv("ANTHROPIC_BASE_URL")
	c.OpenAIKey, c.OpenAIURL = os.Getenv("OPENAI_API_KEY"), os.Getenv("OPENAI_BASE_URL")
}

// resolve fills the defaults that depend on other fields and validates.
func (c *serveConfig) resolve() error {
	if c.envErr != nil {
		return c.envErr
	}
	if c.Provider == "" {
		switch {
		case c.AnthropicKey != "":
			c.Provider = "anthropic"
		case c.OpenAIKey != "":
			c.Provider = "openai"
		default:
			c.Provider = "sim"
		}
	}
	if c.Model == "" {
		c.Model = defaultAnthropicModel
		if c.Provider == "openai" {
			c.Model = defaultOpenAIModel
		}
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("%w: --addr %q: %v", errUsage, c.Addr, err)
	}
	switch {
	case c.Provider != "sim" && c.Provider != "anthropic" && c.Provider != "openai":
		return fmt.Errorf("%w: --provider must be sim, anthropic or openai", errUsage)
	case c.Provider == "anthropic" && c.AnthropicKey == "":
		return fmt.Errorf("%w: --provider anthropic needs ANTHROPIC_API_KEY", errUsage)
	case c.Provider == "openai" && c.OpenAIKey == "" && c.Upstream.OpenAICompat == "openai":
		// Local servers (--openai-compat vllm, llamacpp, ollama) need no key.
		return fmt.Errorf("%w: --provider openai needs OPENAI_API_KEY", errUsage)
	case c.DataDir == "":
		return fmt.Errorf("%w: --data must name a directory", errUsage)
	case c.MaxTokens < 1 || c.MaxTokens > 64000:
		return fmt.Errorf("%w: --max-tokens must be between 1 and 64000", errUsage)
	case c.DrainTimeout < 0:
		return fmt.Errorf("%w: --drain-timeout must not be negative", errUsage)
	case c.IdleTimeout < time.Second:
		return fmt.Errorf("%w: --idle-timeout must be at least 1s", errUsage)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	if err := c.Upstream.validate(); err != nil {
		return err
	}
	if err := c.FinOps.validate(); err != nil {
		return err
	}
	if err := c.Savings.validate(); err != nil {
		return err
	}
	if err := c.Cluster.validate(); err != nil {
		return err
	}
	return c.Sim.validate()
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, s)
	}
	return l, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func env(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

func (c *serveConfig) envInt(key string, def int) int {
	v, ok := os.LookupEnv(key)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil && c.envErr == nil {
		c.envErr = fmt.Errorf("%w: %s=%q is not a whole number", errUsage, key, v)
	}
	return n
}

func (c *serveConfig) envDuration(key string, def time.Duration) time.Duration {
	v, ok := os.LookupEnv(key)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil && c.envErr == nil {
		c.envErr = fmt.Errorf("%w: %s=%q is not a duration such as 30s", errUsage, key, v)
	}
	return d
}
