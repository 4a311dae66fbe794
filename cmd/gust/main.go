// Command gust is Gust's single binary: the server (`gust up`) and the CLI
// for its OpenWhisk-compatible REST API.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/gust-faas/gust/internal/bench"
	"github.com/gust-faas/gust/internal/sandbox/process"
)

func main() {
	// A sandbox's init re-executes this binary; it never returns from here.
	process.MaybeRunInit()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal starts a graceful stop, a second one kills.
	go func() { <-ctx.Done(); stop() }()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var ec exitCoder
		if !errors.Is(err, errSilent) {
			fmt.Fprintln(os.Stderr, "error:", err)
		}
		if errors.As(err, &ec) {
			os.Exit(ec.ExitCode())
		}
		os.Exit(1)
	}
}

// exitCoder lets an error choose the process exit code.
type exitCoder interface{ ExitCode() int }

// errSilent is returned when the message was already printed.
var errSilent = errors.New("")

// run is the whole program; tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stdout)
		return nil
	}
	switch args[0] {
	case "up":
		return runUp(ctx, args[1:], stdout, stderr)
	case "bench":
		return bench.Main(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		usage(stdout)
		return nil
	default:
		if isCLIGroup(args[0]) {
			return runCLI(ctx, args, stdout, stderr)
		}
	}
	return fmt.Errorf("unknown command %q (run 'gust help')", args[0])
}

func usage(w io.Writer) {
	fmt.Fprint(w, `gust — a self-hosted serverless platform (OpenWhisk-compatible)

Usage:
  gust up [flags]            start everything on this machine
  gust bench [flags]         measure Gust end to end beside same-run baselines (docs/PERFORMANCE.md)
  gust help                  show this help

API client (OpenWhisk wsk-style; 'gust GROUP COMMAND --help' for flags):
`+cliGroupUsage()+`
Global flags, anywhere on the line:
  --apihost HOST             API host (env GUST_APIHOST; default `+defaultAPIHost+`)
  -u, --auth UUID:KEY        credentials (env GUST_AUTH)
  --json                     print the JSON the server sends
  -i, --insecure             skip TLS certificate verification
Settings saved with 'gust property set' live in $GUST_CONFIG_FILE or ~/.gust/config.
`)
}
