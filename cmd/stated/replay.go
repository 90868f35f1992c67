package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/stated-dev/stated/cmd/stated/internal/replay"
	"github.com/stated-dev/stated/transport/client"
)

func replayCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stated replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "ws://127.0.0.1:8080",
		"server WebSocket URL(s), comma-separated; the client moves on when one goes away")
	systemFile := fs.String("system-file", "",
		"system prompt for conversations that have none; registered as a preset")
	model := fs.String("model", "", "model of the sessions (default: the server's)")
	maxTokens := fs.Int("max-tokens", 0, "max_tokens of the sessions (default: the server's)")
	concurrency := fs.Int("concurrency", 4, "conversations played at once")
	asJSON := fs.Bool("json", false, "print one JSON object instead of a table")
	openFrames := fs.Bool("open-frames", false,
		"send system prompts and tools in every open frame instead of presets")
	baseline := fs.String("baseline", "",
		"stateless clients replayed beside stated: naive, auto or both (needs --provider-url)")
	provider := fs.String("provider", "anthropic",
		"wire format of --provider-url: anthropic or openai")
	providerURL := fs.String("provider-url", "",
		"API root the baselines send to: the simulator (stated serve --sim-addr) or a provider")
	apiKey := fs.String("api-key", env("STATED_REPLAY_API_KEY", "replay-baseline"),
		"API key of the baselines, suffixed with -naive and -auto")
	thinkTime := fs.Duration("think-time", 0,
		"simulated pause between turns (needs the simulator's manual clock)")
	if err := fs.Parse(args); err != nil {
		return badFlags(err)
	}
	opts, err := replayOptions(stderr, *server, *model, *maxTokens, *concurrency, *baseline,
		*provider, *providerURL, *apiKey, *thinkTime)
	if err != nil {
		return err
	}
	opts.OpenFrames = *openFrames
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: replay needs at least one conversation file", errUsage)
	}
	if *systemFile != "" {
		b, err := os.ReadFile(*systemFile)
		if err != nil {
			return fmt.Errorf("system file: %w", err)
		}
		opts.System = string(b)
	}
	convs, err := replay.LoadFiles(fs.Args()...)
	if err != nil {
		return err
	}
	res, err := replay.Run(ctx, opts, convs)
	if err != nil {
		return err
	}
	if err := printResult(stdout, res, *asJSON); err != nil {
		return err
	}
	return replayErrors(stderr, res)
}

// replayErrors prints samples of the errors and fails when there were any.
func replayErrors(stderr io.Writer, res *replay.Result) error {
	for _, e := range res.ErrorSamples(5) {
		fmt.Fprintln(stderr, "replay error:", e)
	}
	if res.Errors > 0 {
		return fmt.Errorf("replay: %d of %d conversations had errors", res.Errors,
			res.Conversations)
	}
	// A baseline that fails ends its conversation on every side, so its errors
	// make the whole comparison short: say so rather than report partial figures
	// as if they were whole.
	kinds := make([]string, 0, len(res.Baselines))
	for k := range res.Baselines {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		b := res.Baselines[kind]
		for _, e := range b.ErrorSamples(3) {
			fmt.Fprintf(stderr, "replay error (%s baseline): %s\n", kind, e)
		}
		if b.Errors > 0 {
			return fmt.Errorf("replay: the %s baseline failed in %d of %d conversations "+
				"(is --provider-url the API root, with /v1 for openai?)", kind, b.Errors,
				b.Conversations)
		}
	}
	return nil
}

// replayOptions checks the flags and builds the options.
func replayOptions(stderr io.Writer, server, model string, maxTokens, concurrency int,
	baseline, provider, providerURL, apiKey string, think time.Duration) (replay.Options,
	error) {
	opts := replay.Options{
		Servers: client.ParseServers(server), Model: model, MaxTokens: maxTokens,
		Concurrency: concurrency, Progress: stderr, Provider: provider,
		ProviderURL: providerURL, APIKey: apiKey, ThinkTime: think,
	}
	switch baseline {
	case "":
	case "both":
		opts.Baselines = []string{replay.BaselineNaive, replay.BaselineAuto}
	case replay.BaselineNaive, replay.BaselineAuto:
		opts.Baselines = []string{baseline}
	default:
		return opts, fmt.Errorf("%w: --baseline must be naive, auto or both", errUsage)
	}
	switch {
	case concurrency < 1 || concurrency > 1024:
		return opts, fmt.Errorf("%w: --concurrency must be between 1 and 1024", errUsage)
	case provider != "anthropic" && provider != "openai":
		return opts, fmt.Errorf("%w: --provider must be anthropic or openai", errUsage)
	case baseline != "" && providerURL == "":
		return opts, fmt.Errorf("%w: --baseline needs --provider-url", errUsage)
	case think < 0:
		return opts, fmt.Errorf("%w: --think-time must not be negative", errUsage)
	case think > 0 && providerURL == "":
		return opts, fmt.Errorf("%w: --think-time needs --provider-url of a simulator "+
			"with a manual clock", errUsage)
	}
	return opts, nil
}

func printResult(w io.Writer, res *replay.Result, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printReplay(w, res)
	return nil
}

func printReplay(w io.Writer, r *replay.Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	sides := []struct {
		name string
		res  *replay.Result
	}{{"stated", r}}
	for _, kind := range []string{replay.BaselineNaive, replay.BaselineAuto} {
		if b := r.Baselines[kind]; b != nil {
			sides = append(sides, struct {
				name string
				res  *replay.Result
			}{kind, b})
		}
	}
	fmt.Fprint(tw, "\t")
	for _, s := range sides {
		fmt.Fprintf(tw, "%s\t", s.name)
	}
	fmt.Fprintln(tw)
	row := func(name string, v func(*replay.Result) any) {
		fmt.Fprintf(tw, "%s\t", name)
		for _, s := range sides {
			fmt.Fprintf(tw, "%v\t", v(s.res))
		}
		fmt.Fprintln(tw)
	}
	row("conversations", func(x *replay.Result) any { return x.Conversations })
	row("answers", func(x *replay.Result) any { return x.Turns })
	row("errors", func(x *replay.Result) any { return x.Errors })
	row("diverged from recording", func(x *replay.Result) any { return x.Diverged })
	row("client bytes sent", func(x *replay.Result) any { return x.ClientBytesSent })
	row("prompt tokens", func(x *replay.Result) any { return x.InputTokens })
	row("  read from cache", func(x *replay.Result) any { return x.CachedInputTokens })
	row("  written to cache", func(x *replay.Result) any { return x.CacheWriteTokens })
	row("  uncached", func(x *replay.Result) any { return x.UncachedTokens })
	row("cached share", func(x *replay.Result) any { return fmt.Sprintf("%.3f", x.CachedShare) })
	row("output tokens", func(x *replay.Result) any { return x.OutputTokens })
	row("cost USD", func(x *replay.Result) any { return fmt.Sprintf("%.4f", x.CostUSD) })
	tw.Flush()
	printStatedOnly(w, r)
}

// printStatedOnly prints what only stated's side has: rollups, latency, the
// ceiling and the ratios.
func printStatedOnly(w io.Writer, r *replay.Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(name string, v any) { fmt.Fprintf(tw, "%s\t%v\t\n", name, v) }
	row("stateless client bytes", r.StatelessClientBytes)
	row("preset bytes", r.PresetBytes)
	row("rollups", r.Rollups)
	row("rollup cost USD (in cost)", fmt.Sprintf("%.4f", r.RollupCostUSD))
	row("server added ms p50/p99/max", fmt.Sprintf("%.3f / %.3f / %.3f",
		r.AddedMS.P50, r.AddedMS.P99, r.AddedMS.Max))
	row("reconnects", r.Reconnects)
	row("wall seconds", fmt.Sprintf("%.1f", r.WallSeconds))
	if r.CeilingCachedShare > 0 {
		row("ceiling cached share", fmt.Sprintf("%.3f", r.CeilingCachedShare))
	}
	if q := r.Ratios; q != nil {
		row("cost / naive", fmt.Sprintf("%.3f", q.CostVsNaive))
		row("cost / auto", fmt.Sprintf("%.3f", q.CostVsAuto))
		row("long conversations cost / auto", fmt.Sprintf("%.3f", q.LongCostVsAuto))
		row("cached share / ceiling", fmt.Sprintf("%.3f", q.CachedVsCeiling))
		row("bytes from turn 10 / stateless", fmt.Sprintf("%.3f", q.BytesFromTurn10))
	}
	tw.Flush()
}
