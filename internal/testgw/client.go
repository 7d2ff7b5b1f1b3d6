package testgw

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Response is a decoded JSON-RPC reply or notification.
type Response struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
	Params struct {
		Subscription json.RawMessage `json:"subscription"`
		Result       json.RawMessage `json:"result"`
	} `json:"params"`
	Raw []byte `json:"-"`
}

// ErrCode is the error code, or 0 for a success.
func (r *Response) ErrCode() int {
	if r.Error == nil {
		return 0
	}
	return r.Error.Code
}

// httpClient opens a connection per request: a config reload closes idle
// connections, and a POST on one of those would fail for reasons no test
// is about.
var httpClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// Post sends a raw body and returns the status and body.
func Post(t testing.TB, url string, body []byte) (int, []byte) {
	t.Helper()
	return PostWithin(t, url, body, time.Minute)
}

// PostWithin is Post with a client timeout, so a gateway that hangs fails
// the test instead of stalling it.
func PostWithin(t testing.TB, url string, body []byte, timeout time.Duration) (int, []byte) {
	t.Helper()
	client := &http.Client{Transport: httpClient.Transport, Timeout: timeout}
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// PostCall sends one call over HTTP and decodes the reply.
func PostCall(t testing.TB, url, method string, params any) *Response {
	t.Helper()
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":%q,"params":%s}`, method, mustJSON(params))
	status, out := Post(t, url, []byte(body))
	if status != http.StatusOK {
		t.Fatalf("POST %s %s: status %d: %s", url, method, status, out)
	}
	return decode(t, out)
}

func decode(t testing.TB, data []byte) *Response {
	t.Helper()
	var r Response
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("decoding %q: %v", data, err)
	}
	r.Raw = data
	return &r
}

func mustJSON(v any) string {
	if v == nil {
		return "[]"
	}
	if raw, ok := v.(json.RawMessage); ok {
		return string(raw)
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// WSClient is a WebSocket JSON-RPC client that sorts replies by id and
// queues notifications.
type WSClient struct {
	t      testing.TB
	Conn   *websocket.Conn
	nextID atomic.Int64
	// writeMu serialises writes: a WebSocket connection takes one writer
	// at a time, and tests call from several goroutines.
	writeMu sync.Mutex

	mu      sync.Mutex
	replies map[string]chan *Response
	notes   chan *Response
	// Closed receives the close error once the connection ends.
	Closed chan error
	raw    chan []byte
}

// Dial opens a WebSocket client; it is closed when the test ends.
func Dial(t testing.TB, url string) *WSClient {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	c := &WSClient{t: t, Conn: conn, replies: map[string]chan *Response{}, notes: make(chan *Response, 100000), Closed: make(chan error, 1), raw: make(chan []byte, 1000)}
	go c.read()
	t.Cleanup(func() { _ = conn.Close() })
	return c
}

func (c *WSClient) read() {
	for {
		_, data, err := c.Conn.ReadMessage()
		if err != nil {
			c.Closed <- err
			close(c.notes)
			return
		}
		var r Response
		if len(data) > 0 && data[0] == '[' {
			select {
			case c.raw <- data:
			default:
			}
			continue
		}
		if json.Unmarshal(data, &r) != nil {
			continue
		}
		r.Raw = data
		if r.Method != "" {
			c.notes <- &r
			continue
		}
		c.mu.Lock()
		ch := c.replies[string(r.ID)]
		if ch == nil {
			ch = make(chan *Response, 64)
			c.replies[string(r.ID)] = ch
		}
		c.mu.Unlock()
		ch <- &r
	}
}

// SendRaw writes one text frame.
func (c *WSClient) SendRaw(data []byte) {
	c.t.Helper()
	c.writeMu.Lock()
	err := c.Conn.WriteMessage(websocket.TextMessage, data)
	c.writeMu.Unlock()
	if err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// Wait returns the reply with the given raw id.
func (c *WSClient) Wait(id string, timeout time.Duration) *Response {
	c.t.Helper()
	c.mu.Lock()
	ch := c.replies[id]
	if ch == nil {
		ch = make(chan *Response, 64)
		c.replies[id] = ch
	}
	c.mu.Unlock()
	select {
	case r := <-ch:
		return r
	case <-time.After(timeout):
		c.t.Fatalf("no reply for id %s within %v", id, timeout)
		return nil
	}
}

// RawBatch returns the next array frame received.
func (c *WSClient) RawBatch(timeout time.Duration) []byte {
	c.t.Helper()
	select {
	case b := <-c.raw:
		return b
	case <-time.After(timeout):
		c.t.Fatalf("no batch reply within %v", timeout)
		return nil
	}
}

// Call sends a request and waits for its reply.
func (c *WSClient) Call(method string, params any) *Response {
	c.t.Helper()
	id := strconv.FormatInt(c.nextID.Add(1), 10)
	c.SendRaw([]byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"method":%q,"params":%s}`, id, method, mustJSON(params))))
	return c.Wait(id, 10*time.Second)
}

// Subscribe calls a subscribe method and returns the subscription id.
func (c *WSClient) Subscribe(method string, params any) json.RawMessage {
	c.t.Helper()
	r := c.Call(method, params)
	if r.Error != nil || len(r.Result) == 0 {
		c.t.Fatalf("%s: %s", method, r.Raw)
	}
	return r.Result
}

// Next returns the next notification, or fails the test after timeout.
func (c *WSClient) Next(timeout time.Duration) *Response {
	c.t.Helper()
	select {
	case r, ok := <-c.notes:
		if !ok {
			c.t.Fatalf("connection closed while waiting for a notification")
		}
		return r
	case <-time.After(timeout):
		c.t.Fatalf("no notification within %v", timeout)
		return nil
	}
}

// NoNotification asserts that nothing arrives within d.
func (c *WSClient) NoNotification(d time.Duration) {
	c.t.Helper()
	select {
	case r, ok := <-c.notes:
		if ok {
			c.t.Fatalf("unexpected notification: %s", r.Raw)
		}
	case <-time.After(d):
	}
}
