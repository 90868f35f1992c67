package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/session"
	"github.com/stated-dev/stated/storage"
	"github.com/stated-dev/stated/transport"
)

// finopsSettings say who may use the daemon and what it may spend: the
// authentication mode and admin key, the price table, and the runaway guard.
type finopsSettings struct {
	Auth      string        // --auth, STATED_AUTH: auto, on or off
	AdminKey  string        // --admin-key, STATED_ADMIN_KEY: the admin API's key
	TicketTTL time.Duration // --ticket-ttl, STATED_TICKET_TTL: a WebSocket ticket's life
	Prices    string        // --prices, STATED_PRICES: a price table file
	// The runaway guard: --guard-max-turns, --guard-window, --guard-repeat-run,
	// --guard-similarity and their STATED_GUARD_* variables.
	GuardMaxTurns   int
	GuardWindow     time.Duration
	GuardRepeatRun  int
	GuardSimilarity float64
}

// minAdminKey is the shortest admin key accepted: it is a password for every
// tenant's data.
const minAdminKey = 24

func (c *serveConfig) finopsFlags(fs *flag.FlagSet) {
	f := &c.FinOps
	fs.StringVar(&f.Auth, "auth", env("STATED_AUTH", "auto"),
		"require API keys: on, off, or auto (off on a loopback address, on elsewhere)")
	fs.StringVar(&f.AdminKey, "admin-key", env("STATED_ADMIN_KEY", ""),
		"key of the admin API (tenants, keys, budgets); prefer the variable, which ps "+
			"does not show")
	fs.DurationVar(&f.TicketTTL, "ticket-ttl", c.envDuration("STATED_TICKET_TTL",
		transport.DefaultTicketTTL), "how long a browser's WebSocket ticket is good for")
	fs.StringVar(&f.Prices, "prices", env("STATED_PRICES", ""),
		"price table file (the format of finops/prices.json); default: the built-in table")
	d := session.DefaultGuard()
	fs.IntVar(&f.GuardMaxTurns, "guard-max-turns", c.envInt("STATED_GUARD_MAX_TURNS",
		d.MaxTurns), "answers a session may start within --guard-window (-1: no limit)")
	fs.DurationVar(&f.GuardWindow, "guard-window", c.envDuration("STATED_GUARD_WINDOW",
		d.Window), "the window of --guard-max-turns")
	fs.IntVar(&f.GuardRepeatRun, "guard-repeat-run", c.envInt("STATED_GUARD_REPEAT_RUN",
		d.RepeatRun), "answers in a row to near-identical input that pause a session (-1: off)")
	fs.Float64Var(&f.GuardSimilarity, "guard-similarity", c.envFloat("STATED_GUARD_SIMILARITY",
		d.Similarity), "how alike two inputs must be to count as near-identical (0 to 1)")
}

// validate checks the settings against their bounds.
func (f *finopsSettings) validate() error {
	switch {
	case f.Auth != "auto" && f.Auth != "on" && f.Auth != "off":
		return fmt.Errorf("%w: --auth must be auto, on or off", errUsage)
	case f.AdminKey != "" && len(f.AdminKey) < minAdminKey:
		return fmt.Errorf("%w: the admin key must have at least %d characters", errUsage,
			minAdminKey)
	}
	if err := f.guard().Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

func (f *finopsSettings) guard() session.Guard {
	return session.Guard{MaxTurns: f.GuardMaxTurns, Window: f.GuardWindow,
		RepeatRun: f.GuardRepeatRun, Similarity: f.GuardSimilarity}
}

// authOn decides whether clients must authenticate on addr: "auto" is off on a
// loopback address and on elsewhere; "off" elsewhere is allowed, with a warning.
func (f *finopsSettings) authOn(addr string, log *slog.Logger) bool {
	switch f.Auth {
	case "on":
		return true
	case "off":
		if !transport.IsLoopback(addr) {
			log.Warn("authentication is off on an address others can reach: every client "+
				"acts for the tenant default", "addr", addr)
		}
		return false
	}
	return !transport.IsLoopback(addr)
}

// finopsParts are what the daemon keeps for FinOps, over the store's KV space.
type finopsParts struct {
	kv      storage.KV
	prices  *finops.PriceTable
	ledger  *finops.Ledger
	budgets *finops.Budgets
	tenants *finops.Tenants
}

// openFinOps builds the ledger, budgets, tenants and price table over kv.
func openFinOps(cfg *serveConfig, kv storage.KV, log *slog.Logger) (*finopsParts, error) {
	prices := finops.DefaultPrices()
	if cfg.FinOps.Prices != "" {
		f, err := os.Open(cfg.FinOps.Prices)
		if err != nil {
			return nil, fmt.Errorf("price table: %w", err)
		}
		defer f.Close()
		if prices, err = finops.LoadPrices(f); err != nil {
			return nil, fmt.Errorf("price table %s: %w", cfg.FinOps.Prices, err)
		}
	}
	ledger := finops.NewLedger(kv, log)
	return &finopsParts{kv: kv, prices: prices, ledger: ledger,
		budgets: finops.NewBudgets(kv, ledger, log), tenants: finops.NewTenants(kv)}, nil
}

// transportConfig fills the authentication and FinOps fields of a transport
// configuration, and refuses a server that would authenticate nobody.
func (p *finopsParts) transportConfig(ctx context.Context, cfg *serveConfig,
	tc transport.Config, log *slog.Logger) (transport.Config, error) {
	tc.Auth = cfg.FinOps.authOn(cfg.Addr, log)
	tc.Tenants, tc.AdminKey, tc.TicketTTL = p.tenants, cfg.FinOps.AdminKey, cfg.FinOps.TicketTTL
	tc.Ledger, tc.Budgets = p.ledger, p.budgets
	if err := transport.CheckAuth(ctx, tc); err != nil {
		return tc, fmt.Errorf("refusing to start on %s: %w; set STATED_ADMIN_KEY and create "+
			"tenants and keys, or pass --auth=off to serve without authentication", cfg.Addr, err)
	}
	return tc, nil
}

func (c *serveConfig) envFloat(key string, def float64) float64 {
	v, ok := os.LookupEnv(key)
	if !ok {
		return def
	}
	var f float64
	if _, err := fmt.Sscan(v, &f); err != nil && c.envErr == nil {
		c.envErr = fmt.Errorf("%w: %s=%q is not a number", errUsage, key, v)
	}
	return f
}
