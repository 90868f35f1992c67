// Command stated is the stated session server and its tools.
//
//	stated [serve] [flags]   run the server (the default)
//	stated sim [flags]       run the provider simulator on its own
//	stated replay [flags] FILE...
//	                         replay recorded conversations against a server
//	stated report [flags]    summarize the ledger: cost, savings, top sessions
//	stated bench [flags]     measure a running server: turns, latency, CPU, memory
//
// Run "stated COMMAND -h" for a command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches to a subcommand and returns the process exit code: 0 on success,
// 1 on failure, 2 on bad usage.
func run(args []string, stdout, stderr io.Writer) int {
	cmd, rest := "serve", args
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, rest = args[0], args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	switch cmd {
	case "serve":
		err = serveCmd(ctx, rest, stdout, stderr)
	case "sim":
		err = simCmd(ctx, rest, stderr)
	case "replay":
		err = replayCmd(ctx, rest, stdout, stderr)
	case "report":
		err = reportCmd(ctx, rest, stdout, stderr)
	case "bench":
		err = benchCmd(ctx, rest, stdout, stderr)
	case "help":
		fmt.Fprintln(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "stated: unknown command %q\n%s\n", cmd, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errFlags):
		return 2 // the flag set has said what is wrong, and shown the usage
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, err)
		return 2
	default:
		fmt.Fprintln(stderr, "stated:", err)
		return 1
	}
}

var errUsage = errors.New("stated: usage")

// errFlags marks a command line the flag set could not parse; the flag set has
// printed the error and the usage already.
var errFlags = errors.New("stated: flags")

// badFlags marks err, from parsing a command line, as errFlags, except a request
// for help, which is no error.
func badFlags(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return fmt.Errorf("%w: %w", errFlags, err)
}

const usage = `usage:
  stated [serve] [--addr HOST:PORT] [--data DIR] [--provider sim|anthropic|openai] [--model NAME]
  stated sim --addr HOST:PORT [--replies FILE...]
  stated replay --server ws://HOST:PORT [--system-file FILE] [--concurrency N] [--json] FILE...
  stated report --data DIR | --server http://HOST:PORT [--from DAY] [--to DAY] [--json]
  stated bench --server ws://HOST:PORT --sessions N --turns M [--rate R] [--idle] [--json]
run "stated COMMAND -h" for all flags`
