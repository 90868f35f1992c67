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
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/stated-dev/stated/providers/sim"
)

// stringList is a flag that may be given more than once and takes comma-separated
// values.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, splitList(v)...)
	return nil
}

// simSettings are the simulator settings that `stated sim` and the in-process
// simulator of `stated serve` share. Each has a flag; in serve, the flags are
// prefixed with "sim-" and each has an environment variable STATED_SIM_*.
type simSettings struct {
	ManualClock     bool          // --manual-clock: the clock moves only by POST /_sim/clock
	FirstToken      time.Duration // --latency-first-token: base time to the first token
	PerThousand     time.Duration // --latency-per-1k: more per 1000 uncached input tokens
	TokensPerSecond float64       // --latency-tokens-per-second: output rate, 0 unpaced
	Faults          stringList    // --fault: fault rules such as status=529@0.05
	FaultSeed       uint64        // --fault-seed: seed of the fault draws, 0 random
	MaxCaptures     int           // --max-captures: requests kept for GET /_sim/requests
}

// register adds the settings' flags to fs, named with prefix. With envPrefix
// not empty, each flag's default comes from the environment variable envPrefix
// followed by the flag's name in upper case (dashes as underscores); the first
// variable that does not parse is kept in *envErr.
func (c *simSettings) register(fs *flag.FlagSet, prefix, envPrefix string, envErr *error) {
	env := func(name string) (string, bool) {
		if envPrefix == "" {
			return "", false
		}
		key := envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		return os.LookupEnv(key)
	}
	fail := func(name, v string) {
		if *envErr == nil {
			*envErr = fmt.Errorf("%w: the environment value %q of --%s%s does not parse",
				errUsage, v, prefix, name)
		}
	}
	fs.BoolVar(&c.ManualClock, prefix+"manual-clock", envParse(env, fail, "manual-clock",
		false, strconv.ParseBool), "the simulator's clock stands still and moves only "+
		"by POST /_sim/clock {\"advance_ms\": N}")
	fs.DurationVar(&c.FirstToken, prefix+"latency-first-token", envParse(env, fail,
		"latency-first-token", 0, time.ParseDuration), "base time to the first token")
	fs.DurationVar(&c.PerThousand, prefix+"latency-per-1k", envParse(env, fail,
		"latency-per-1k", 0, time.ParseDuration),
		"more time to the first token per 1000 input tokens not read from the cache")
	fs.Float64Var(&c.TokensPerSecond, prefix+"latency-tokens-per-second", envParse(env, fail,
		"latency-tokens-per-second", 0, parseFloat), "output rate in tokens a second (0: unpaced)")
	faults := &envList{list: &c.Faults}
	if v, ok := env("faults"); ok {
		c.Faults, faults.fromEnv = splitList(v), true
	}
	fs.Var(faults, prefix+"fault", "a fault rule fault@rate, such as status=529@0.05, "+
		"cut=3@0.01 or stall=2@0.01; repeat the flag or separate with commas")
	fs.Uint64Var(&c.FaultSeed, prefix+"fault-seed", envParse(env, fail, "fault-seed",
		uint64(0), parseUint), "seed of the fault draws; the same seed gives the same faults "+
		"to the same sequence of requests (0: random)")
	fs.IntVar(&c.MaxCaptures, prefix+"max-captures", envParse(env, fail, "max-captures",
		0, strconv.Atoi), "requests kept for GET /_sim/requests (0: 256, negative: none)")
}

// envList is a stringList flag whose first use on the command line replaces
// the values an environment variable gave, as a flag wins over its variable.
type envList struct {
	list    *stringList
	fromEnv bool
}

func (l *envList) String() string {
	if l.list == nil {
		return ""
	}
	return l.list.String()
}

func (l *envList) Set(v string) error {
	if l.fromEnv {
		*l.list, l.fromEnv = nil, false
	}
	return l.list.Set(v)
}

func parseFloat(s string) (float64, error) { return strconv.ParseFloat(s, 64) }
func parseUint(s string) (uint64, error)   { return strconv.ParseUint(s, 10, 64) }

// envParse returns the parsed value of the named setting's environment
// variable, or def when it is unset or does not parse (which fail records).
func envParse[T any](env func(string) (string, bool), fail func(name, v string),
	name string, def T, parse func(string) (T, error)) T {
	v, ok := env(name)
	if !ok {
		return def
	}
	out, err := parse(v)
	if err != nil {
		fail(name, v)
		return def
	}
	return out
}

// options returns the simulator options of the settings, checked.
func (c *simSettings) options(replies *sim.Replies, log *slog.Logger) (sim.Options, error) {
	opts := sim.Options{
		Replies: replies, Logger: log, FaultSeed: c.FaultSeed, MaxCaptures: c.MaxCaptures,
		Latency: sim.Latency{FirstToken: c.FirstToken, PerThousandUncached: c.PerThousand,
			TokensPerSecond: c.TokensPerSecond},
	}
	if c.ManualClock {
		opts.Clock = sim.NewManualClock(time.Now())
	}
	for _, text := range c.Faults {
		rule, err := sim.ParseFaultRule(text)
		if err != nil {
			return sim.Options{}, fmt.Errorf("%w: %v", errUsage, err)
		}
		opts.Faults = append(opts.Faults, rule)
	}
	if err := opts.Validate(); err != nil {
		return sim.Options{}, fmt.Errorf("%w: %v", errUsage, err)
	}
	return opts, nil
}

// validate checks the settings as options would.
func (c *simSettings) validate() error {
	_, err := c.options(nil, nil)
	return err
}

func simCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("stated sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8081", "listen address")
	var replies stringList
	fs.Var(&replies, "replies", "conversation files (OpenAI chat JSONL) to answer from; "+
		"repeat the flag or separate with commas")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	var settings simSettings
	var envErr error
	settings.register(fs, "", "", &envErr)
	if err := fs.Parse(args); err != nil {
		return badFlags(err)
	}
	// Files named after the flags count as reply files too: --replies a.jsonl b.jsonl.
	replies = append(replies, fs.Args()...)
	lvl, err := parseLevel(*level)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))

	recorded, err := sim.LoadReplies(replies...)
	if err != nil {
		return err
	}
	opts, err := settings.options(recorded, log)
	if err != nil {
		return err
	}
	return serveSim(ctx, *addr, sim.New(opts), &settings, len(replies), log)
}

// serveSim serves srv on addr until ctx is cancelled.
func serveSim(ctx context.Context, addr string, srv *sim.Server, settings *simSettings,
	replies int, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	log.Info("simulator listening", "addr", ln.Addr().String(), "replies", replies,
		"anthropic", "POST /v1/messages", "openai", "POST /v1/chat/completions, "+
			"POST /v1/responses", "manual_clock", settings.ManualClock,
		"faults", settings.Faults.String())

	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	}
	srv.Close() // release stalled streams so that shutdown does not wait for them
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
