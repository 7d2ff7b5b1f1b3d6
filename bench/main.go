// Command bench measures what the Elara gateway costs per request: the same
// JSON-RPC call sent straight to a fake Substrate node, through Caddy with
// elara_rpc, and through Caddy's plain reverse_proxy. See README.md.
//
//	go run ./bench            # full run, 5s per case
//	go run ./bench -quick     # smoke test, 1s per case
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	opts, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if opts.serveNode {
		// Child mode: the fake node runs in its own process so that it does
		// not share a Go scheduler and heap with the load generator.
		if err := serveNode(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "bench node:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, opts, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
