package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/stated-dev/stated/cmd/stated/internal/bench"
)

// benchCmd runs "stated bench": it drives a running server and prints what it
// measured, as a table or one JSON object. It fails after printing when a turn
// failed or the run was interrupted.
func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o := bench.DefaultOptions()
	fs := flag.NewFlagSet("stated bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Server, "server", o.Server, "the server's WebSocket URL (ws://HOST:PORT)")
	fs.IntVar(&o.Sessions, "sessions", o.Sessions, "sessions to open, one connection each")
	fs.IntVar(&o.Turns, "turns", o.Turns, "user turns each session sends, in rounds")
	fs.Float64Var(&o.Rate, "rate", 0, "turns a second across all sessions (0: as fast as "+
		"the server answers)")
	fs.BoolVar(&o.Idle, "idle", false, "measure server memory per connected idle session "+
		"instead of turns")
	fs.DurationVar(&o.Hold, "hold", o.Hold, "with --idle: how long to hold the connections")
	fs.DurationVar(&o.Settle, "settle", o.Settle, "with --idle: the pause before the "+
		"server's memory is read")
	fs.StringVar(&o.Key, "key", env("STATED_KEY", ""), "a tenant's API key, for a server "+
		"with authentication")
	fs.StringVar(&o.AdminKey, "admin-key", env("STATED_ADMIN_KEY", ""), "the admin key, "+
		"to read /stats of a server with authentication")
	fs.StringVar(&o.Model, "model", "", "model of the sessions (default: the server's)")
	fs.IntVar(&o.TextBytes, "text-bytes", o.TextBytes, "size of each generated user turn")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "seed of the generated text")
	fs.Float64Var(&o.ConnectRate, "connect-rate", o.ConnectRate, "connections opened a "+
		"second at most")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "wait for each answer, session frame "+
		"and resume at most this long")
	fs.BoolVar(&o.Resume, "resume", o.Resume, "after the turns, close every connection and "+
		"time the resume of each session")
	fs.DurationVar(&o.ResumeWait, "resume-wait", o.ResumeWait, "how long to wait for the "+
		"server to evict the sessions before the resumes")
	fs.IntVar(&o.ResumeConcurrency, "resume-concurrency", o.ResumeConcurrency,
		"resumes at once")
	asJSON := fs.Bool("json", false, "print one JSON object instead of a table")
	if err := fs.Parse(args); err != nil {
		return badFlags(err)
	}
	if err := benchFlagsAgree(fs, o.Idle); err != nil {
		return err
	}
	o.Progress = stderr

	res, err := bench.Run(ctx, o)
	if errors.Is(err, bench.ErrInvalid) {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if res == nil {
		return err
	}
	if perr := printBench(stdout, res, *asJSON); perr != nil {
		return perr
	}
	switch {
	case err != nil:
		return err
	case res.Interrupted:
		return errors.New("bench: interrupted; the figures are those measured until then")
	case res.Errors > 0:
		return fmt.Errorf("bench: %d errors: %v", res.Errors, res.ErrorsByCode)
	}
	return nil
}

// benchFlagsAgree refuses flags that do not apply to the mode, and arguments.
func benchFlagsAgree(fs *flag.FlagSet, idle bool) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	var wrong []string
	fs.Visit(func(f *flag.Flag) {
		turnsOnly := strings.HasPrefix(f.Name, "resume") || f.Name == "turns" ||
			f.Name == "rate"
		idleOnly := f.Name == "hold" || f.Name == "settle"
		if (idle && turnsOnly) || (!idle && idleOnly) {
			wrong = append(wrong, "--"+f.Name)
		}
	})
	switch {
	case len(wrong) > 0 && idle:
		return fmt.Errorf("%w: %s do not apply to --idle", errUsage, strings.Join(wrong, ", "))
	case len(wrong) > 0:
		return fmt.Errorf("%w: %s apply only to --idle", errUsage, strings.Join(wrong, ", "))
	}
	return nil
}

// printBench prints a result as one JSON object or a table.
func printBench(w io.Writer, res *bench.Result, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{name}, args...)...)
	}
	q := func(name string, v bench.Quantiles) {
		row(name, "%.3f / %.3f / %.3f\t(%d)", v.P50, v.P99, v.Max, v.Count)
	}
	row("sessions", "%d of %d\t(%d source addresses, %.1fs)", res.Sessions,
		res.SessionsWanted, res.SourceAddresses, res.OpenSec)
	for _, k := range countKeys(res.ConnectFailures) {
		row("  failed: "+k, "%d", res.ConnectFailures[k])
	}
	if res.OpenStopped != "" {
		row("  opening stopped", "%s", res.OpenStopped)
	}
	if res.Mode == "idle" {
		printIdle(tw, res)
	} else {
		row("turns answered", "%d of %d sent\t(%d errors)", res.Turns, res.TurnsSent,
			res.Errors)
		row("turns per second", "%.1f\t(%.2fs)", res.TurnsPerSec, res.WallSec)
		row("", "p50 / p99 / max ms\t(count)")
		q("server added", res.AddedMS)
		q("server relay", res.RelayMS)
		q("server relay, first", res.RelayFirstMS)
		q("server commit wait", res.CommitWaitMS)
		q("server relay path", res.RelayPathMS)
		q("client first delta", res.FirstDeltaMS)
		q("client answer", res.AnswerMS)
		q("resume", res.ResumeMS)
		row("resume cold", "%v", res.ResumeCold)
		row("cpu seconds per turn", "%.6f", res.CPUSecPerTurn)
		for _, c := range res.CPUByHistory {
			row(fmt.Sprintf("  from history %d", c.History), "%.6f\t(%d turns)",
				c.CPUSecPerTurn, c.Turns)
		}
	}
	for _, k := range countKeys(res.ErrorsByCode) {
		row("  error: "+k, "%d", res.ErrorsByCode[k])
	}
	for _, n := range res.Notes {
		row("note", "%s", n)
	}
	return tw.Flush()
}

// printIdle prints the idle figures.
func printIdle(tw io.Writer, res *bench.Result) {
	val := func(p *float64) float64 {
		if p == nil {
			return 0
		}
		return *p
	}
	fmt.Fprintf(tw, "idle bytes per session\t%.0f\n", val(res.IdleBytesPerSession))
	fmt.Fprintf(tw, "  go heap\t%.0f\n", val(res.IdleHeapBytesPerSession))
	fmt.Fprintf(tw, "  go stacks\t%.0f\n", val(res.IdleStackBytesPerSession))
	fmt.Fprintf(tw, "lost while held\t%d\n", res.IdleLost)
}

// countKeys returns the keys of a count map in order.
func countKeys(m map[string]int) []string {
	return slices.Sorted(maps.Keys(m))
}
