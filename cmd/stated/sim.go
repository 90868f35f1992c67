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

func simCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("stated sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8081", "listen address")
	var replies stringList
	fs.Var(&replies, "replies", "conversation files (OpenAI chat JSONL) to answer from; "+
		"repeat the flag or separate with commas")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
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
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{Handler: sim.New(sim.Options{Replies: recorded, Logger: log}),
		ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	log.Info("simulator listening", "addr", ln.Addr().String(), "replies", len(replies),
		"anthropic", "POST /v1/messages", "openai", "POST /v1/chat/completions")

	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
