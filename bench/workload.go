package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Workload is what each request of a case does: the message sent and how
// the reply is checked. Both run in the load generator's hot loop, which
// shares the CPU with the system under test, so they must be cheap.
type Workload interface {
	// Name labels the workload in the report.
	Name() string
	// Method is the JSON-RPC method sent, to count what reached the node.
	Method() string
	// Request appends the request with this id to dst.
	Request(dst []byte, id uint64) []byte
	// Check validates the reply to the request with this id.
	Check(reply []byte, id uint64) error
}

// resolver is a workload that needs the running node before it can be
// used: params naming a block hash, or the exact result to expect.
type resolver interface {
	resolve(ctx context.Context, env *Env) error
}

// rpcCall is a single JSON-RPC call with fixed params.
type rpcCall struct {
	name   string
	method string
	params string // JSON array
	// want, when set, is the exact result expected (compact JSON).
	want string
	// setup, if set, prepares the node and returns params; it runs once
	// the node is up, before any target starts.
	setup func(ctx context.Context, env *Env) (params string, err error)
	// fetchWant sets want to the node's own answer to the call, so that
	// every setup must return exactly what the node does.
	fetchWant bool
}

func (c *rpcCall) Name() string   { return c.name }
func (c *rpcCall) Method() string { return c.method }

func (c *rpcCall) Request(dst []byte, id uint64) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = strconv.AppendUint(dst, id, 10)
	dst = append(dst, `,"method":"`...)
	dst = append(dst, c.method...)
	dst = append(dst, `","params":`...)
	dst = append(dst, c.params...)
	return append(dst, '}')
}

func (c *rpcCall) resolve(ctx context.Context, env *Env) error {
	if c.setup != nil {
		p, err := c.setup(ctx, env)
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		c.params = p
	}
	if c.fetchWant {
		res, err := callOnce(ctx, endpoint(HTTP, env.Node.Addr()), c.Request(nil, 1))
		if err != nil {
			return fmt.Errorf("%s: asking the node: %w", c.name, err)
		}
		if string(res) == "null" {
			return fmt.Errorf("%s: the node answers null, which no cache keeps", c.name)
		}
		c.want = string(res)
	}
	return nil
}

// callOnce posts one request and returns its result, compacted.
func callOnce(ctx context.Context, url string, body []byte) (json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var r reply
	if err := json.Unmarshal(data, &r); err != nil || r.Error != nil || r.Result == nil {
		return nil, fmt.Errorf("status %d: %.200s", resp.StatusCode, data)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, r.Result); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// reply is the part of a response the checks look at.
type reply struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// fastCheckMin is the size of an expected result from which Check
// compares bytes instead of decoding the reply: decoding 300 kB of
// metadata would cost the load generator about a millisecond per reply.
const fastCheckMin = 1024

func (c *rpcCall) Check(data []byte, id uint64) error {
	if len(c.want) >= fastCheckMin {
		return checkLarge(data, id, c.want)
	}
	var r reply
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("bad reply %.120q: %v", data, err)
	}
	switch {
	case r.Error != nil:
		return fmt.Errorf("error reply: %.200s", r.Error)
	case string(r.ID) != strconv.FormatUint(id, 10):
		return fmt.Errorf("reply id %s, want %d", r.ID, id)
	case r.Result == nil:
		return fmt.Errorf("reply without result: %.120q", data)
	case c.want != "":
		if bytes.Equal(r.Result, []byte(c.want)) {
			return nil
		}
		// A gateway may re-encode with other spacing; compare compacted.
		var buf bytes.Buffer
		if json.Compact(&buf, r.Result) != nil || buf.String() != c.want {
			return fmt.Errorf("result %.120s, want %.120s", r.Result, c.want)
		}
	}
	return nil
}

var (
	resultKey = []byte(`"result":`)
	idKey     = []byte(`"id":`)
)

// checkLarge checks a reply to carry exactly the result want and the id,
// without decoding it: the result must follow `"result":` byte for byte
// and be followed by ',' or '}'; `"id":<id>` must be outside it. The
// reply is taken to be a JSON object otherwise well formed (a result and
// an error cannot both be there).
func checkLarge(data []byte, id uint64, want string) error {
	data = bytes.TrimSpace(data)
	if len(data) < 2 || data[0] != '{' || data[len(data)-1] != '}' {
		return fmt.Errorf("bad reply %.120q", data)
	}
	i := bytes.Index(data, resultKey)
	if i < 0 {
		return fmt.Errorf("reply without result: %.120q", data)
	}
	rest := bytes.TrimLeft(data[i+len(resultKey):], " \t\r\n")
	if !bytes.HasPrefix(rest, []byte(want)) {
		return fmt.Errorf("result %.120s, want %.120s", rest, want)
	}
	after := bytes.TrimLeft(rest[len(want):], " \t\r\n")
	if len(after) == 0 || (after[0] != ',' && after[0] != '}') {
		return fmt.Errorf("result longer than expected: %.120s", after)
	}
	got, ok := findID(data[:i])
	if !ok {
		got, ok = findID(after)
	}
	if !ok {
		return fmt.Errorf("reply without id: %.120q", data)
	}
	if got != strconv.FormatUint(id, 10) {
		return fmt.Errorf("reply id %s, want %d", got, id)
	}
	return nil
}

// findID returns the value after `"id":` in s, up to ',' or '}'.
func findID(s []byte) (string, bool) {
	j := bytes.Index(s, idKey)
	if j < 0 {
		return "", false
	}
	v := s[j+len(idKey):]
	end := bytes.IndexAny(v, ",}")
	if end < 0 {
		return "", false
	}
	return strings.TrimSpace(string(v[:end])), true
}

// staticReply wraps the workload of a target that answers every request
// with the same body, written with id 1: the id of the request cannot be
// echoed, so the reply is checked against id 1.
type staticReply struct{ Workload }

func (s staticReply) Check(data []byte, _ uint64) error { return s.Workload.Check(data, 1) }

// unwrap returns the workload a wrapper wraps.
func unwrap(w Workload) Workload {
	if s, ok := w.(staticReply); ok {
		return s.Workload
	}
	return w
}
