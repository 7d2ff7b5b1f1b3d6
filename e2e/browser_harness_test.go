package e2e

// Headless Chromium for the browser tests: prerequisites (skip, or fail
// under ELARA_REQUIRE_BROWSER), a static page server on its own origin, and
// runBrowserScript, which runs a testdata/browser_*.mjs script (built on
// testdata/browser.mjs) and keeps its screenshot and output in the test's
// artefact dir when the test fails.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

const browserScriptTimeout = 3 * time.Minute

// chromiumPath finds the browser: ELARA_CHROMIUM, else Debian's `chromium`
// (or `chromium-browser`) on PATH.
func chromiumPath() (string, error) {
	if p := os.Getenv("ELARA_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("ELARA_CHROMIUM=%s: %w", p, err)
		}
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no `chromium` on PATH: install it (`apt-get install chromium`; ./test.sh does) or set ELARA_CHROMIUM")
}

// requireBrowser returns the Chromium executable, or skips the test with
// the step that fixes what is missing. Under ELARA_REQUIRE_BROWSER (test.sh
// sets it) a missing prerequisite fails the test instead.
func requireBrowser(t *testing.T) string {
	t.Helper()
	missing := func(msg string) {
		if os.Getenv("ELARA_REQUIRE_BROWSER") != "" {
			t.Fatal("browser test: " + msg)
		}
		t.Skip("browser test: " + msg)
	}
	chromium, err := chromiumPath()
	if err != nil {
		missing(err.Error())
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing("`node` (Node.js >= 20) is not on PATH")
	}
	if _, err := os.Stat(filepath.Join(testdataDir, "node_modules/playwright-core/package.json")); err != nil {
		missing("playwright-core is not installed: run `npm ci` in e2e/testdata (./test.sh does)")
	}
	return chromium
}

// artefactDir is where a test keeps what explains its failure (screenshots,
// browser output): under the package work dir, which TestMain keeps and
// names when a test failed.
func artefactDir(t *testing.T) string {
	t.Helper()
	name := regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_")
	dir := filepath.Join(packageWorkDir(t), "artefacts", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("creating artefact dir: %v", err)
	}
	return dir
}

// servePage serves one HTML page at / on a port of its own and returns its
// origin (http://127.0.0.1:PORT). It is stopped when the test ends.
func servePage(t *testing.T, html []byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/favicon.ico" {
			// Browsers ask for it; a 404 would only add noise to the log.
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(html)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// runBrowserScript runs `node testdata/<script> args...` with the browser
// from requireBrowser and decodes the script's ELARA_BROWSER_RESULT line
// into out. The script's screenshot and output are copied to the test's
// artefact dir if the test fails.
func runBrowserScript(t *testing.T, chromium, script string, out any, args ...string) {
	t.Helper()
	tmp := t.TempDir()
	shot := filepath.Join(tmp, "page.png")
	ctx, cancel := context.WithTimeout(context.Background(), browserScriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{script}, args...)...)
	cmd.Dir = testdataDir
	// Chromium's crash handler and caches write under the XDG dirs, not
	// the profile playwright gives it: keep them out of $HOME.
	cmd.Env = append(os.Environ(), "ELARA_CHROMIUM="+chromium, "ELARA_BROWSER_SHOT="+shot,
		"XDG_CONFIG_HOME="+filepath.Join(tmp, "config"), "XDG_CACHE_HOME="+filepath.Join(tmp, "cache"))
	cmd.WaitDelay = 10 * time.Second
	cmd.SysProcAttr = childProcAttr()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()

	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		dir := artefactDir(t)
		if b, err := os.ReadFile(shot); err == nil {
			_ = os.WriteFile(filepath.Join(dir, "page.png"), b, 0o644)
		}
		_ = os.WriteFile(filepath.Join(dir, script+".stdout"), stdout.Bytes(), 0o644)
		_ = os.WriteFile(filepath.Join(dir, script+".stderr"), stderr.Bytes(), 0o644)
		t.Logf("browser artefacts (screenshot, output) in %s", dir)
	})

	line, ok := scanResultLine(stdout.Bytes(), "ELARA_BROWSER_RESULT ")
	if !ok {
		t.Fatalf("%s printed no result (%v)\nstdout:\n%s\nstderr:\n%s", script, runErr,
			truncate(stdout.String(), 4000), truncate(stderr.String(), 4000))
	}
	var status struct {
		OK    bool     `json:"ok"`
		Error string   `json:"error"`
		Log   []string `json:"log"`
	}
	if err := json.Unmarshal(line, &status); err != nil {
		t.Fatalf("%s: bad result JSON: %v\n%s", script, err, truncate(string(line), 4000))
	}
	if !status.OK || runErr != nil {
		t.Fatalf("%s failed (exit: %v): %s\npage log: %q\nstderr:\n%s", script, runErr, status.Error, status.Log, truncate(stderr.String(), 3000))
	}
	if err := json.Unmarshal(line, out); err != nil {
		t.Fatalf("%s: decoding result: %v\n%s", script, err, truncate(string(line), 4000))
	}
}
