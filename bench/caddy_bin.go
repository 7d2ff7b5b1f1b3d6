package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// caddyResolver returns a function that finds the Caddy binary on first
// use and remembers the answer.
func caddyResolver(o options, dir string, log io.Writer) func(context.Context) (string, error) {
	var (
		path string
		err  error
		done bool
	)
	return func(ctx context.Context) (string, error) {
		if !done {
			path, err = resolveCaddy(ctx, o.caddyBin, o.caddyExplicit, dir, log)
			done = true
		}
		return path, err
	}
}

// resolveCaddy returns bin if it exists. A missing default binary is built
// from this checkout into dir; a missing binary named by flag or
// environment is an error, since building silently would hide a typo.
func resolveCaddy(ctx context.Context, bin string, explicit bool, dir string, log io.Writer) (string, error) {
	_, err := os.Stat(bin)
	switch {
	case err == nil:
		abs, err := filepath.Abs(bin)
		if err != nil {
			return "", err
		}
		return abs, checkPlugin(ctx, abs)
	case explicit || !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("caddy binary: %w", err)
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "caddy")
	fmt.Fprintf(log, "bench: %s not found; building Caddy with go build ./cmd/caddy\n", bin)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/caddy")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building caddy: %w", err)
	}
	return out, checkPlugin(ctx, out)
}

// checkPlugin fails early for a Caddy built without Elara, which would
// otherwise only show as a Caddyfile error.
func checkPlugin(ctx context.Context, bin string) error {
	out, err := exec.CommandContext(ctx, bin, "list-modules").Output()
	if err != nil {
		return fmt.Errorf("%s list-modules: %w", bin, err)
	}
	if !bytes.Contains(out, []byte("http.handlers.elara_rpc\n")) {
		return fmt.Errorf("%s has no elara_rpc module: build it with ./xcaddy.sh", bin)
	}
	return nil
}

// caddyVersion is the first word of `caddy version`, for the report.
func caddyVersion(ctx context.Context, bin string) string {
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if f := strings.Fields(string(out)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("finding the module root (run from the repository): %v", err)
	}
	return filepath.Dir(gomod), nil
}
