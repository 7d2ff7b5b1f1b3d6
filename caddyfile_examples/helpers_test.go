package examples

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/elara-gateway/elara/internal/testgw"
)

func itoa(n int) string { return strconv.Itoa(n) }

func postAuth(t *testing.T, url, user, pass, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// adaptedServer is what the tests read of one HTTP server an example
// adapts to; raw is the server's whole JSON.
type adaptedServer struct {
	Listen []string `json:"listen"`
	Routes []struct {
		Match []map[string]json.RawMessage `json:"match"`
	} `json:"routes"`
	AutoHTTPS *struct {
		Disable bool `json:"disable"`
	} `json:"automatic_https"`
	raw string
}

// adaptServers adapts an example with the current environment and returns
// its HTTP servers by name.
func adaptServers(t *testing.T, file string) map[string]adaptedServer {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := testgw.Adapt(string(src))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]json.RawMessage `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	servers := make(map[string]adaptedServer, len(cfg.Apps.HTTP.Servers))
	for name, rawSrv := range cfg.Apps.HTTP.Servers {
		var srv adaptedServer
		if err := json.Unmarshal(rawSrv, &srv); err != nil {
			t.Fatal(err)
		}
		srv.raw = string(rawSrv)
		servers[name] = srv
	}
	if len(servers) == 0 {
		t.Fatalf("%s adapts to no HTTP server:\n%s", file, raw)
	}
	return servers
}
