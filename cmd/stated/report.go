package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/stated-dev/stated/finops"
	"github.com/stated-dev/stated/storage"
)

// reportOptions are the flags of "stated report".
type reportOptions struct {
	data     string // --data: read the ledger from a data directory no server holds
	server   string // --server: read it over HTTP from a running server
	key      string // --key, STATED_KEY: the bearer key for --server
	from, to string // --from, --to: RFC 3339 or YYYY-MM-DD
	tenant   string // --tenant: one tenant (admin key or --data)
	top      int    // --top: how many sessions to list
	json     bool   // --json: print the summary as JSON
}

// summary is what the report prints: the totals, by model, by lever, and the top
// sessions.
type summary struct {
	Total       finops.Totals  `json:"total"`
	Models      []finops.Group `json:"models"`
	TopSessions []finops.Group `json:"top_sessions"`
}

func reportCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o reportOptions
	fs := flag.NewFlagSet("stated report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.data, "data", "", "data directory to read the ledger from "+
		"(no server may be running on it)")
	fs.StringVar(&o.server, "server", "", "read the ledger over HTTP from a running server "+
		"(http://HOST:PORT)")
	fs.StringVar(&o.key, "key", env("STATED_KEY", ""), "API key for --server: a tenant's "+
		"key reports that tenant, the admin key every tenant")
	fs.StringVar(&o.from, "from", "", "first day or instant (YYYY-MM-DD or RFC 3339, UTC)")
	fs.StringVar(&o.to, "to", "", "last day (YYYY-MM-DD, included) or instant (excluded)")
	fs.StringVar(&o.tenant, "tenant", "", "report one tenant only")
	fs.IntVar(&o.top, "top", 10, "how many of the costliest sessions to list")
	fs.BoolVar(&o.json, "json", false, "print JSON instead of tables")
	if err := fs.Parse(args); err != nil {
		return badFlags(err)
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	case (o.data == "") == (o.server == ""):
		return fmt.Errorf("%w: give exactly one of --data and --server", errUsage)
	case o.top < 0 || o.top > 1000:
		return fmt.Errorf("%w: --top must be between 0 and 1000", errUsage)
	}

	var sum *summary
	var err error
	if o.data != "" {
		sum, err = reportFromData(ctx, &o)
	} else {
		sum, err = reportFromServer(ctx, &o)
	}
	if err != nil {
		return err
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	}
	printSummary(stdout, &o, sum)
	return nil
}

// reportFromData reads the ledger of a data directory. Badger locks a directory
// for one process: while a server runs on it, the open fails, and the report says
// to stop the server or use --server.
func reportFromData(ctx context.Context, o *reportOptions) (*summary, error) {
	if _, err := os.Stat(o.data); err != nil {
		return nil, fmt.Errorf("report: data directory: %w", err)
	}
	store, err := storage.OpenBadger(storage.DefaultBadgerOptions(o.data))
	if err != nil {
		if strings.Contains(err.Error(), "directory lock") {
			return nil, fmt.Errorf("report: %s is in use by a running server; stop it, or "+
				"read the ledger over HTTP with --server", o.data)
		}
		return nil, fmt.Errorf("report: open %s: %w", o.data, err)
	}
	defer store.Close()
	kv, err := store.KV()
	if err != nil {
		return nil, err
	}
	q, err := reportQuery(o)
	if err != nil {
		return nil, err
	}
	ledger := finops.NewLedger(kv, nil)
	byModel, err := ledger.Report(ctx, q, finops.GroupModel)
	if err != nil {
		return nil, err
	}
	bySession, err := ledger.Report(ctx, q, finops.GroupSession)
	if err != nil {
		return nil, err
	}
	return newSummary(byModel, bySession, o.top), nil
}

// reportQuery reads the range and tenant of the flags as the usage endpoint does.
func reportQuery(o *reportOptions) (finops.Query, error) {
	q := finops.Query{Tenant: o.tenant}
	var err error
	if q.From, err = parseDay(o.from, false); err != nil {
		return q, fmt.Errorf("%w: --from: %v", errUsage, err)
	}
	if q.To, err = parseDay(o.to, true); err != nil {
		return q, fmt.Errorf("%w: --to: %v", errUsage, err)
	}
	return q, nil
}

// parseDay reads RFC 3339 or a date; a date ending a range means the next day's
// start, so that day is included.
func parseDay(s string, end bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		if end {
			d = d.AddDate(0, 0, 1)
		}
		return d, nil
	}
	return time.Parse(time.RFC3339, s)
}

// reportFromServer reads the usage endpoints of a running server.
func reportFromServer(ctx context.Context, o *reportOptions) (*summary, error) {
	base, err := url.Parse(o.server)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("%w: --server must be http://HOST:PORT", errUsage)
	}
	get := func(groupBy string) (*finops.Report, error) {
		v := url.Values{"group_by": {groupBy}}
		for k, s := range map[string]string{"from": o.from, "to": o.to, "tenant": o.tenant} {
			if s != "" {
				v.Set(k, s)
			}
		}
		return fetchReport(ctx, base.JoinPath("/v1/usage").String()+"?"+v.Encode(), o.key)
	}
	byModel, err := get("model")
	if err != nil {
		return nil, err
	}
	bySession, err := get("session")
	if err != nil {
		return nil, err
	}
	return newSummary(byModel, bySession, o.top), nil
}

// maxReportBody bounds a usage report read from a server.
const maxReportBody = 64 << 20

func fetchReport(ctx context.Context, u, key string) (*finops.Report, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReportBody))
	if err != nil {
		return nil, fmt.Errorf("report: read %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("report: %s: %s: %s", u, resp.Status,
			strings.TrimSpace(string(body[:min(len(body), 300)])))
	}
	var r finops.Report
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("report: decode %s: %w", u, err)
	}
	return &r, nil
}

func newSummary(byModel, bySession *finops.Report, top int) *summary {
	s := &summary{Total: byModel.Total, Models: byModel.Groups}
	s.TopSessions = bySession.Groups[:min(top, len(bySession.Groups))]
	if s.Models == nil {
		s.Models = []finops.Group{}
	}
	return s
}

// printSummary writes the summary as a few readable tables.
func printSummary(w io.Writer, o *reportOptions, s *summary) {
	t := &s.Total
	scope := "every tenant"
	if o.tenant != "" {
		scope = "tenant " + o.tenant
	} else if o.server != "" {
		scope = "what the key may see"
	}
	fmt.Fprintf(w, "stated FinOps report: %s, %s\n\n", scope, rangeText(o.from, o.to))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "provider calls\t%d (%d with estimated usage)\n", t.Calls, t.EstimatedCalls)
	fmt.Fprintf(tw, "cost\t%s USD\n", money(t.CostUSD))
	fmt.Fprintf(tw, "stateless clients would have paid\t%s USD\n", money(t.NaiveCostUSD))
	saved := t.NaiveCostUSD - t.CostUSD
	fmt.Fprintf(tw, "saved\t%s USD (%s)\n", money(saved), percent(saved, t.NaiveCostUSD))
	for _, lv := range slices.Sorted(maps.Keys(t.SavingsUSD)) {
		fmt.Fprintf(tw, "  by %s\t%s USD\n", lv, money(t.SavingsUSD[lv]))
	}
	fmt.Fprintf(tw, "cache reads\t%s of prompt tokens\n", percent(t.CacheReadShare, 1))
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tokens\tinput\tcache write 5m\tcache write 1h\tcache read\toutput\t")
	fmt.Fprintf(tw, "\t%d\t%d\t%d\t%d\t%d\t\n", t.InputTokens, t.CacheWrite5mTokens,
		t.CacheWrite1hTokens, t.CacheReadTokens, t.OutputTokens)
	tw.Flush()

	printGroups(w, "model", s.Models)
	printGroups(w, "top sessions", s.TopSessions)
}

func printGroups(w io.Writer, title string, groups []finops.Group) {
	if len(groups) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\tcalls\tcost USD\tstateless USD\tsaved\tcache reads\n", title)
	for _, g := range groups {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", g.Key, g.Calls, money(g.CostUSD),
			money(g.NaiveCostUSD), percent(g.NaiveCostUSD-g.CostUSD, g.NaiveCostUSD),
			percent(g.CacheReadShare, 1))
	}
	tw.Flush()
}

func rangeText(from, to string) string {
	switch {
	case from == "" && to == "":
		return "all time"
	case from == "":
		return "until " + to
	case to == "":
		return "from " + from
	}
	return from + " to " + to
}

func money(usd float64) string { return fmt.Sprintf("%.4f", usd) }

func percent(part, whole float64) string {
	if whole == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*part/whole)
}
