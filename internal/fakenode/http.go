package fakenode

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// maxRequestSize is jsonrpsee's default maximum request size (10 MiB).
const maxRequestSize = 10 << 20

// serveHTTP routes like a Substrate node: WebSocket upgrades on any path,
// JSON-RPC over POST on any path, GET /health and /health/readiness.
func (n *Node) serveHTTP(g *generation, w http.ResponseWriter, r *http.Request) {
	g.wg.Add(1) // the connection is counted already, so this cannot race with Wait
	defer g.wg.Done()
	if websocket.IsWebSocketUpgrade(r) {
		n.serveWS(g, w, r)
		return
	}
	switch {
	case r.Method == http.MethodPost:
		n.serveHTTPRPC(g, w, r)
	case r.Method == http.MethodGet && r.URL.Path == "/health":
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(n.healthJSON())
	case r.Method == http.MethodGet && r.URL.Path == "/health/readiness":
		// Substrate: ready once synced and connected.
		if n.syncing.Load() || n.peers.Load() == 0 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	default:
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	}
}

func (n *Node) healthJSON() []byte {
	return fmt.Appendf(nil, `{"peers":%d,"isSyncing":%t,"shouldHavePeers":true}`, n.peers.Load(), n.syncing.Load())
}

// isJSON accepts what jsonrpsee accepts: application/json, with or without
// parameters such as charset.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

func (n *Node) serveHTTPRPC(g *generation, w http.ResponseWriter, r *http.Request) {
	if !isJSON(r.Header.Get("Content-Type")) {
		http.Error(w, "Supplied content type is not allowed. Content-Type: application/json is required", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestSize))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "Request body too large", http.StatusRequestEntityTooLarge)
		}
		return
	}
	abort := r.Context().Done()
	reqs, batch, perr := parseMessage(body)
	if perr != nil {
		writeJSON(w, encodeError(nil, perr))
		return
	}
	n.recordCalls(reqs)

	outs := make([]outcome, len(reqs))
	var delay time.Duration
	dropped := false
	for i, req := range reqs {
		outs[i] = n.exec(req, nil, g.stop, abort)
		switch o := outs[i]; {
		case o.aborted:
			return
		case o.disconnect:
			panic(http.ErrAbortHandler) // net/http closes the connection without a response
		case o.dropped:
			dropped = true
		}
		delay = max(delay, outs[i].delay)
	}
	msg := assemble(outs, batch, n.faults.reorder.Load())
	if msg == nil && dropped {
		// Never answer: hang until the client gives up or the node stops.
		select {
		case <-g.stop:
		case <-abort:
		}
		return
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-g.stop:
			return
		case <-abort:
			return
		}
	}
	if msg == nil { // only notifications: jsonrpsee acknowledges with an empty body
		return
	}
	writeJSON(w, msg)
}

func writeJSON(w http.ResponseWriter, msg []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(msg)
}

// assemble builds the reply message from per-request outcomes: the single
// response, or the batch array of the requests that got one. nil means there
// is nothing to send.
func assemble(outs []outcome, batch, reverse bool) []byte {
	if !batch {
		return outs[0].resp
	}
	var parts [][]byte
	for _, o := range outs {
		if o.resp != nil {
			parts = append(parts, o.resp)
		}
	}
	if len(parts) == 0 {
		return nil
	}
	if reverse {
		for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
			parts[i], parts[j] = parts[j], parts[i]
		}
	}
	var b bytes.Buffer
	b.WriteByte('[')
	b.Write(bytes.Join(parts, []byte{','}))
	b.WriteByte(']')
	return b.Bytes()
}
