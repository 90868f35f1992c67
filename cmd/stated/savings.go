package main

import (
	"flag"
	"fmt"
	"net"

	"github.com/stated-dev/stated/session"
)

// savingsSettings configure the savings engine and where the in-process simulator
// listens. Each has a flag and a STATED_* environment variable.
type savingsSettings struct {
	SimAddr          string // --sim-addr: fixed loopback address of the in-process simulator
	RollupHigh       int    // --rollup-high-tokens
	RollupLow        int    // --rollup-low-tokens
	SummaryModel     string // --summary-model
	RationAfterTurns int    // --ration-after-turns
	RationMinTokens  int    // --ration-min-tokens
	DedupMinTokens   int    // --dedup-min-tokens
	CacheKeyRPM      int    // --cache-key-rpm
}

func (c *serveConfig) savingsFlags(fs *flag.FlagSet) {
	s := &c.Savings
	d := session.DefaultContextPolicy()
	fs.StringVar(&s.SimAddr, "sim-addr", env("STATED_SIM_ADDR", ""),
		"loopback address the built-in simulator listens on, so other clients (stated "+
			"replay --provider-url) reach it (default: a free port)")
	fs.IntVar(&s.RollupHigh, "rollup-high-tokens", c.envInt("STATED_ROLLUP_HIGH_TOKENS",
		d.RollupHighTokens), "verbatim tokens past which old turns are summarized (-1: never)")
	fs.IntVar(&s.RollupLow, "rollup-low-tokens", c.envInt("STATED_ROLLUP_LOW_TOKENS", 0),
		"verbatim tokens a rollup leaves (default: a third of the high mark)")
	fs.StringVar(&s.SummaryModel, "summary-model", env("STATED_SUMMARY_MODEL", ""),
		"model that writes rollup summaries (default: claude-haiku-4-5 for Claude "+
			"sessions, gpt-4.1-mini for the others)")
	fs.IntVar(&s.RationAfterTurns, "ration-after-turns", c.envInt("STATED_RATION_AFTER_TURNS",
		d.RationAfterTurns), "answers after which a large tool result may be left out "+
		"of the prompt (-1: never)")
	fs.IntVar(&s.RationMinTokens, "ration-min-tokens", c.envInt("STATED_RATION_MIN_TOKENS",
		d.RationMinTokens), "smallest tool result worth leaving out")
	fs.IntVar(&s.DedupMinTokens, "dedup-min-tokens", c.envInt("STATED_DEDUP_MIN_TOKENS",
		d.DedupMinTokens), "smallest repeated block sent once (-1: never)")
	fs.IntVar(&s.CacheKeyRPM, "cache-key-rpm", c.envInt("STATED_CACHE_KEY_RPM", 15),
		"requests a minute one OpenAI prompt_cache_key carries before a preset's key is "+
			"split into shards (-1: never split)")
}

// validate checks the settings as a session's policy would be checked.
func (s *savingsSettings) validate() error {
	if s.SimAddr != "" {
		host, _, err := net.SplitHostPort(s.SimAddr)
		ip := net.ParseIP(host)
		if err != nil || host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("%w: --sim-addr %q must be a loopback host:port: the "+
				"simulator takes any API key", errUsage, s.SimAddr)
		}
	}
	if s.CacheKeyRPM == 0 || s.CacheKeyRPM < -1 {
		return fmt.Errorf("%w: --cache-key-rpm must be -1 or positive", errUsage)
	}
	p := s.policy()
	if p.RollupHighTokens > 0 && p.RollupLowTokens == 0 {
		p.RollupLowTokens = p.RollupHighTokens / 3
	}
	if err := session.CheckContextPolicy(p); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

// policy is the servers' default context policy.
func (s *savingsSettings) policy() session.ContextPolicy {
	return session.ContextPolicy{
		RollupHighTokens: s.RollupHigh, RollupLowTokens: s.RollupLow,
		SummaryModel: s.SummaryModel, RationAfterTurns: s.RationAfterTurns,
		RationMinTokens: s.RationMinTokens, DedupMinTokens: s.DedupMinTokens,
	}
}
