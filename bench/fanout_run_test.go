package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary be the bench's node as well: the bench
// starts its node as a child, itself run with -serve-node.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-serve-node" {
		if err := serveNode(os.Stdin, os.Stdout); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// The fan-out cases as the README runs them, small: every client of every
// setup gets every block once, in order.
func TestFanoutThroughTheGateway(t *testing.T) {
	bin := os.Getenv(caddyBinEnv)
	if bin == "" {
		t.Skip(caddyBinEnv + " is not set: no Caddy binary to measure")
	}
	o, err := parseFlags([]string{"-caddy", bin, "-cases", "fanout", "-fanout", "200", "-blocks", "4",
		"-interval", "200ms", "-targets", "direct,elara,elara-deflate"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, o, &out); err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	var header []string
	rows := 0
	for line := range strings.Lines(out.String()) {
		cells := tableCells(strings.TrimSpace(line))
		switch {
		case len(cells) > 1 && cells[0] == "clients":
			header = cells
		case header != nil && len(cells) == len(header) && cells[0] == "200":
			rows++
			row := map[string]string{}
			for i, h := range header {
				row[h] = cells[i]
			}
			if row["lost/dup/reord"] != "0/0/0" || row["errors"] != "0" {
				t.Errorf("%s: lost/dup/reordered %s, errors %s", row["setup"], row["lost/dup/reord"], row["errors"])
			}
		}
	}
	if rows != 4 { // direct, elara, elara-deflate, chainHead follow through elara
		t.Errorf("%d fan-out rows, want 4:\n%s", rows, out.String())
	}
}
