package handler

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/elara-gateway/elara/app"
	"github.com/elara-gateway/elara/suber"
)

// healthReport is the body of GET /{chain}/health.
type healthReport struct {
	Chain     string         `json:"chain"`
	Ready     int            `json:"ready"`
	Best      uint64         `json:"best"`
	Finalized uint64         `json:"finalized"`
	Nodes     []suber.Health `json:"nodes"`
}

// serveHealth answers 200 while at least one node is ready, 503 when none
// is, so load balancers and uptime checks see what users would get.
func serveHealth(w http.ResponseWriter, r *http.Request, c *app.Chain) error {
	rep := healthReport{Chain: c.Name, Nodes: c.Upstream.Health()}
	for i, h := range rep.Nodes {
		// Node addresses and errors describe the operator's network; they
		// stay on the admin API.
		rep.Nodes[i].URL = "node-" + strconv.Itoa(i+1)
		rep.Nodes[i].LastError = ""
		if h.Ready {
			rep.Ready++
			rep.Best = max(rep.Best, h.Best)
			rep.Finalized = max(rep.Finalized, h.Finalized)
		}
	}
	status := http.StatusOK
	if rep.Ready == 0 {
		status = http.StatusServiceUnavailable
	}
	body, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return nil
	}
	_, err = w.Write(body)
	return err
}
