package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/stated-dev/stated/cmd/stated/internal/replay"
	"github.com/stated-dev/stated/transport/client"
)

func replayCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stated replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "ws://127.0.0.1:8080",
		"server WebSocket URL(s), comma-separated; the client moves on when one goes away")
	systemFile := fs.String("system-file", "",
		"system prompt for conversations that have none")
	model := fs.String("model", "", "model of the sessions (default: the server's)")
	maxTokens := fs.Int("max-tokens", 0, "max_tokens of the sessions (default: the server's)")
	concurrency := fs.Int("concurrency", 4, "conversations played at once")
	asJSON := fs.Bool("json", false, "print one JSON object instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: replay needs at least one conversation file", errUsage)
	}
	if *concurrency < 1 || *concurrency > 1024 {
		return fmt.Errorf("%w: --concurrency must be between 1 and 1024", errUsage)
	}
	opts := replay.Options{
		Servers: client.ParseServers(*server), Model: *model, MaxTokens: *maxTokens,
		Concurrency: *concurrency, Progress: stderr,
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
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		printReplay(stdout, res)
	}
	for _, e := range res.ErrorSamples(5) {
		fmt.Fprintln(stderr, "replay error:", e)
	}
	if res.Errors > 0 {
		return fmt.Errorf("replay: %d of %d conversations had errors", res.Errors,
			res.Conversations)
	}
	return nil
}

func printReplay(w io.Writer, r *replay.Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(name string, v any) { fmt.Fprintf(tw, "%s\t%v\t\n", name, v) }
	row("conversations", r.Conversations)
	row("answers", r.Turns)
	row("errors", r.Errors)
	row("diverged from recording", r.Diverged)
	row("client bytes sent", r.ClientBytesSent)
	row("stateless client bytes", r.StatelessClientBytes)
	if r.StatelessClientBytes > 0 {
		row("bytes ratio", fmt.Sprintf("%.3f",
			float64(r.ClientBytesSent)/float64(r.StatelessClientBytes)))
	}
	row("prompt tokens", r.InputTokens)
	row("  read from cache", r.CachedInputTokens)
	row("  written to cache", r.CacheWriteTokens)
	row("  uncached", r.UncachedTokens)
	row("cached share", fmt.Sprintf("%.3f", r.CachedShare))
	row("output tokens", r.OutputTokens)
	row("cost USD", fmt.Sprintf("%.4f", r.CostUSD))
	row("server added ms p50/p99/max", fmt.Sprintf("%.3f / %.3f / %.3f",
		r.AddedMS.P50, r.AddedMS.P99, r.AddedMS.Max))
	row("reconnects", r.Reconnects)
	row("wall seconds", fmt.Sprintf("%.1f", r.WallSeconds))
	tw.Flush()
}
