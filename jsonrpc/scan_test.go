package jsonrpc_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/elara-gateway/elara/jsonrpc"
)

// The oracle below is the encoding/json-based parser that the single-pass
// scanner (scan.go) replaced, kept verbatim but for names. The scanner must
// give the same answer for every body; FuzzScanMatchesEncodingJSON checks it.
// One rule was added since: a body that is not valid UTF-8 is refused first.

func oracleParse(body []byte, lim jsonrpc.Limits) (*jsonrpc.Parsed, *jsonrpc.Error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidRequest, Message: "Invalid request: empty body"}
	}
	if !utf8.Valid(body) {
		return nil, jsonrpc.ErrInvalidUTF8
	}
	if err := oracleCheckDepth(body, lim.MaxDepth); err != nil {
		return nil, err
	}
	if body[0] != '[' {
		c := oracleParseOne(body)
		if c.Err == jsonrpc.ErrParse {
			return nil, jsonrpc.ErrParse
		}
		return &jsonrpc.Parsed{Calls: []jsonrpc.Call{c}}, nil
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(body, &entries); err != nil {
		return nil, jsonrpc.ErrParse
	}
	if len(entries) == 0 {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidRequest, Message: "Invalid request: empty batch"}
	}
	if len(entries) > lim.MaxBatch {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidRequest, Message: fmt.Sprintf("Invalid request: batch of %d calls is over the limit of %d", len(entries), lim.MaxBatch)}
	}
	p := &jsonrpc.Parsed{Batch: true, Calls: make([]jsonrpc.Call, len(entries))}
	for i, e := range entries {
		p.Calls[i] = oracleParseOne(e)
	}
	return p, nil
}

func oracleParseRequest(body []byte, maxDepth int) jsonrpc.Call {
	if !utf8.Valid(body) {
		return jsonrpc.Call{Err: jsonrpc.ErrInvalidUTF8, ID: oracleNullID}
	}
	if err := oracleCheckDepth(body, maxDepth); err != nil {
		return jsonrpc.Call{Err: err, ID: oracleNullID}
	}
	return oracleParseOne(bytes.TrimSpace(body))
}

type oracleWireRequest struct {
	JSONRPC, ID, Method, Params json.RawMessage
}

func oracleDecodeRequest(raw []byte) (oracleWireRequest, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return oracleWireRequest{}, err
	}
	return oracleWireRequest{JSONRPC: members["jsonrpc"], ID: members["id"], Method: members["method"], Params: members["params"]}, nil
}

var oracleNullID = json.RawMessage("null")

func oracleParseOne(raw []byte) jsonrpc.Call {
	nullID := oracleNullID
	if len(raw) == 0 || raw[0] != '{' {
		if !json.Valid(raw) {
			return jsonrpc.Call{Err: jsonrpc.ErrParse, ID: nullID}
		}
		return jsonrpc.Call{Err: oracleWithDetail(jsonrpc.ErrInvalidRequest, "expected a JSON object"), ID: nullID}
	}
	w, err := oracleDecodeRequest(raw)
	if err != nil {
		return jsonrpc.Call{Err: jsonrpc.ErrParse, ID: nullID}
	}
	id := w.ID
	if id != nil && !oracleValidID(id) {
		return jsonrpc.Call{Err: oracleWithDetail(jsonrpc.ErrInvalidRequest, "id must be a string, a number or null"), ID: nullID}
	}
	replyID := id
	if replyID == nil {
		replyID = nullID
	}
	if string(w.JSONRPC) != `"2.0"` {
		return jsonrpc.Call{Err: oracleWithDetail(jsonrpc.ErrInvalidRequest, `jsonrpc must be "2.0"`), ID: replyID}
	}
	if len(w.Method) == 0 || w.Method[0] != '"' {
		return jsonrpc.Call{Err: oracleWithDetail(jsonrpc.ErrInvalidRequest, "method must be a string"), ID: replyID}
	}
	var method string
	if err := json.Unmarshal(w.Method, &method); err != nil || method == "" {
		return jsonrpc.Call{Err: oracleWithDetail(jsonrpc.ErrInvalidRequest, "method must be a non-empty string"), ID: replyID}
	}
	var params json.RawMessage
	if w.Params != nil && string(w.Params) != "null" {
		if w.Params[0] != '[' && w.Params[0] != '{' {
			return jsonrpc.Call{Err: oracleWithDetail(jsonrpc.ErrInvalidRequest, "params must be an array or an object"), ID: replyID}
		}
		params = w.Params
		if bytes.IndexAny(params, " \t\r\n") >= 0 {
			var buf bytes.Buffer
			if err := json.Compact(&buf, w.Params); err != nil {
				return jsonrpc.Call{Err: jsonrpc.ErrParse, ID: replyID}
			}
			params = buf.Bytes()
		}
	}
	return jsonrpc.Call{Request: &jsonrpc.Request{ID: id, Method: method, Params: params}, ID: replyID}
}

func oracleValidID(id json.RawMessage) bool {
	switch c := id[0]; {
	case c == '"', c == '-', c >= '0' && c <= '9':
		return true
	default:
		return string(id) == "null"
	}
}

func oracleWithDetail(base *jsonrpc.Error, detail string) *jsonrpc.Error {
	return &jsonrpc.Error{Code: base.Code, Message: base.Message + ": " + detail}
}

func oracleCheckDepth(body []byte, max int) *jsonrpc.Error {
	if max <= 0 {
		return nil
	}
	depth, inString, escaped := 0, false, false
	for _, c := range body {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
			if depth > max {
				return &jsonrpc.Error{Code: jsonrpc.CodeInvalidRequest, Message: fmt.Sprintf("Invalid request: JSON nested deeper than %d levels", max)}
			}
		case ']', '}':
			depth--
		}
	}
	return nil
}

// describeParsed is the whole observable outcome of Parse, for comparison.
func describeParsed(p *jsonrpc.Parsed, err *jsonrpc.Error) string {
	if err != nil {
		if p != nil {
			return "both a result and an error"
		}
		return fmt.Sprintf("body error{%d %q %s}", err.Code, err.Message, err.Data)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "batch=%v calls=%d", p.Batch, len(p.Calls))
	for _, c := range p.Calls {
		b.WriteString("\n  " + describe(c))
	}
	return b.String()
}

// scanSeeds are bodies meant to find where a hand-written scanner and
// encoding/json part ways.
var scanSeeds = []string{
	// Plain calls and the usual shapes.
	`{"jsonrpc":"2.0","id":42,"method":"state_getStorage","params":["0x26aa394eea5630e07c48ae0c9558cef7"]}`,
	`{"id":1,"jsonrpc":"2.0","method":"chain_getBlockHash","params":[0]}`,
	`{"jsonrpc":"2.0","method":"notify"}`,
	`{"jsonrpc":"2.0","id":null,"method":"m","params":null}`,
	`{}`, `[]`, `[ ]`, `{ }`, `[{}]`, `[{},{}]`, `[1,2,3]`, `[[]]`, `[null]`, `[{"jsonrpc":"2.0","id":1,"method":"a"}]`,
	` {"jsonrpc":"2.0","id":1,"method":"a"} `,
	"\t\r\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"}\n",
	// Whitespace everywhere, including what bytes.TrimSpace trims but JSON does not.
	" { \"jsonrpc\" : \"2.0\" , \"id\" : 1 , \"method\" : \"a\" , \"params\" : [ 1 , { \"k\" : [ ] } , \" s p \" ] } ",
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"params\":\n[\n\t1\r\n]\n}",
	"\v{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"}\f",
	"\u00a0{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"}\u0085",
	"\u2028{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"}\u3000",
	"{\"jsonrpc\":\"2.0\",\v\"id\":1,\"method\":\"a\"}",
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"params\":[1,\u00a02]}",
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"params\":[\"\t\"]}",
	// Escaped, duplicated and case-varied member names.
	`{"jsonrpc":"2.0","id":1,"meth\u006fd":"a"}`,
	`{"\u006a\u0073\u006f\u006e\u0072\u0070\u0063":"2.0","\u0069\u0064":7,"\u006D\u0065\u0074\u0068\u006F\u0064":"a","\u0070\u0061\u0072\u0061\u006d\u0073":[1]}`,
	`{"jsonrpc":"2.0","id":1,"method\u0000":"a"}`,
	`{"jsonrpc":"2.0","id":1,"method\ud800":"a","method":"b"}`,
	`{"jsonrpc":"2.0","id":1,"method":"a","method":"b","method":"c"}`,
	`{"jsonrpc":"2.0","id":1,"id":2,"id":null,"method":"a"}`,
	`{"jsonrpc":"2.0","id":1,"method":"a","params":[1],"params":null}`,
	`{"jsonrpc":"1.0","jsonrpc":"2.0","id":1,"method":"a"}`,
	`{"jsonrpc":"2.0","jsonrpc":"2.0 ","id":1,"method":"a"}`,
	`{"Jsonrpc":"2.0","Id":1,"Method":"a","Params":[]}`,
	`{"JSONRPC":"2.0","ID":1,"METHOD":"a"}`,
	`{"jsonrpc":"2.0","id":1,"method":"a","méthod":"b","\u212athod":"c"}`,
	`{"jsonrpc":"2.0","id":1,"method":"a","\u006d\u0065\u0074\u0068\u006f\u0064\u006d\u0065\u0074\u0068\u006f\u0064":"b"}`,
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"meth\xffod\":\"b\",\"method\":\"a\"}",
	`{"jsonrpc":"2.0","id":1,"method":"a","":"","\\":1,"\"":2}`,
	`{"jsonrpc":"2\u002e0","id":1,"method":"a"}`,
	// Method strings: escapes, unicode, surrogates, invalid UTF-8.
	`{"jsonrpc":"2.0","id":1,"method":"system\u005fchain"}`,
	`{"jsonrpc":"2.0","id":1,"method":"\u0000"}`,
	`{"jsonrpc":"2.0","id":1,"method":"\ud83d\ude00"}`,
	`{"jsonrpc":"2.0","id":1,"method":"\uD83D\uDE00x"}`,
	`{"jsonrpc":"2.0","id":1,"method":"\ud800"}`,
	`{"jsonrpc":"2.0","id":1,"method":"\udc00\ud800"}`,
	`{"jsonrpc":"2.0","id":1,"method":"\ud800\ud800\udc00"}`,
	`{"jsonrpc":"2.0","id":1,"method":"\ud800\u0041"}`,
	`{"jsonrpc":"2.0","id":1,"method":"\ud800\n"}`,
	`{"jsonrpc":"2.0","id":1,"method":"\ud800\"}`,
	`{"jsonrpc":"2.0","id":1,"method":"\ud800\u"}`,
	`{"jsonrpc":"2.0","id":1,"method":"\ud800\udc0"}`,
	`{"jsonrpc":"2.0","id":1,"method":"\ud800\udg00"}`,
	`{"jsonrpc":"2.0","id":1,"method":"\u12"}`,
	`{"jsonrpc":"2.0","id":1,"method":"\U0041"}`,
	`{"jsonrpc":"2.0","id":1,"method":"\'"}`,
	`{"jsonrpc":"2.0","id":1,"method":"\a"}`,
	`{"jsonrpc":"2.0","id":1,"method":"a\/b\\c\"d\b\f\n\r\t"}`,
	`{"jsonrpc":"2.0","id":1,"method":"日本語"}`,
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xef\xbf\xbd\"}",
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\xffb\xfe\"}",
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xed\xa0\x80\"}",
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xc0\xaf\"}",
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xe6\x97\"}",
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xf4\x90\x80\x80\"}",
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\x7f\"}",
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\x1fb\"}",
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\tb\"}",
	"{\"jsonrpc\":\"2.0\",\"id\":\"\xff\",\"method\":\"a\"}",
	"\xef\xbb\xbf{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"}",
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\"}\xef\xbb\xbf",
	`{"jsonrpc":"2.0","id":1,"method":"\ufeff"}`,
	// Ids: numbers of every form, strings, wrong types.
	`{"jsonrpc":"2.0","id":-0,"method":"a"}`,
	`{"jsonrpc":"2.0","id":-0.0e-0,"method":"a"}`,
	`{"jsonrpc":"2.0","id":1E+400,"method":"a"}`,
	`{"jsonrpc":"2.0","id":123456789012345678901234567890.123456789e-99999,"method":"a"}`,
	`{"jsonrpc":"2.0","id":01,"method":"a"}`,
	`{"jsonrpc":"2.0","id":-01,"method":"a"}`,
	`{"jsonrpc":"2.0","id":+1,"method":"a"}`,
	`{"jsonrpc":"2.0","id":.5,"method":"a"}`,
	`{"jsonrpc":"2.0","id":1.,"method":"a"}`,
	`{"jsonrpc":"2.0","id":1.e5,"method":"a"}`,
	`{"jsonrpc":"2.0","id":1e,"method":"a"}`,
	`{"jsonrpc":"2.0","id":1e+,"method":"a"}`,
	`{"jsonrpc":"2.0","id":1e5.5,"method":"a"}`,
	`{"jsonrpc":"2.0","id":-,"method":"a"}`,
	`{"jsonrpc":"2.0","id":--1,"method":"a"}`,
	`{"jsonrpc":"2.0","id":0x10,"method":"a"}`,
	`{"jsonrpc":"2.0","id":1_000,"method":"a"}`,
	`{"jsonrpc":"2.0","id":Infinity,"method":"a"}`,
	`{"jsonrpc":"2.0","id":0,"method":"a"}`,
	`{"jsonrpc":"2.0","id":0e0,"method":"a"}`,
	`{"jsonrpc":"2.0","id":"","method":"a"}`,
	`{"jsonrpc":"2.0","id":"\u0000\"","method":"a"}`,
	`{"jsonrpc":"2.0","id":true,"method":"a"}`,
	`{"jsonrpc":"2.0","id":false,"method":"a"}`,
	`{"jsonrpc":"2.0","id":nul,"method":"a"}`,
	`{"jsonrpc":"2.0","id":nulll,"method":"a"}`,
	`{"jsonrpc":"2.0","id":True,"method":"a"}`,
	`{"jsonrpc":"2.0","id":{"a":[1]},"method":"a"}`,
	`{"jsonrpc":"2.0","id":[],"method":"a"}`,
	// Params of every type and shape.
	`{"jsonrpc":"2.0","id":1,"method":"a","params":[]}`,
	`{"jsonrpc":"2.0","id":1,"method":"a","params":{}}`,
	`{"jsonrpc":"2.0","id":1,"method":"a","params":"x"}`,
	`{"jsonrpc":"2.0","id":1,"method":"a","params":1}`,
	`{"jsonrpc":"2.0","id":1,"method":"a","params":true}`,
	`{"jsonrpc":"2.0","id":1,"method":"a","params":[1,[2,[3,{"a":{"b":[true,false,null]}}]]]}`,
	`{"jsonrpc":"2.0","id":1,"method":"a","params":[123456789012345678901234567890e12345, -0.0, 1E-7]}`,
	`{"jsonrpc":"2.0","id":1,"method":"a","params":["\"[{", "\\", "]}"]}`,
	`{"jsonrpc":"2.0","id":1,"method":"a","params":{"a":1,"a":2}}`,
	`{"jsonrpc":"2.0","id":1,"method":"a","params":[1,]}`,
	`{"jsonrpc":"2.0","id":1,"method":"a","params":[,1]}`,
	`{"jsonrpc":"2.0","id":1,"method":"a","params":{"a"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"a","params":{"a":}}`,
	`{"jsonrpc":"2.0","id":1,"method":"a","params":{1:2}}`,
	`{"jsonrpc":"2.0","id":1,"method":"a","params":[}`,
	`{"jsonrpc":"2.0","id":1,"method":"a","params":{]}`,
	`{"jsonrpc":"2.0","id":1,"method":"a","params":[1 2]}`,
	`{"jsonrpc":"2.0","id":1,"method":"a","params":[01]}`,
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\",\"params\":[\"\xff\xfe\", \"\\ud800\"]}",
	// Syntax errors and trailing bytes.
	`{"jsonrpc":"2.0","id":1,"method":"a"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"a"}]`,
	`{"jsonrpc":"2.0","id":1,"method":"a"},`,
	`{"jsonrpc":"2.0","id":1,"method":"a"} {}`,
	`{"jsonrpc":"2.0","id":1,"method":"a",}`,
	`{"jsonrpc":"2.0","id":1,"method":"a" "x":1}`,
	`{"jsonrpc":"2.0","id":1,"method"}`,
	`{"jsonrpc":"2.0","id":1,"method":}`,
	`{"jsonrpc":"2.0","id":1,,"method":"a"}`,
	`{,}`, `[,]`, `{"a"`, `{"a":`, `{"a":1`, `{"a":1,`, `[1`, `[1,`, `"`, `"\`, `"\u`, `-`, `t`, `nu`,
	`{'a':1}`, `{a:1}`, `1 2`, `true false`, `[1]]`, `{"a":1}}`,
	`[{"jsonrpc":"2.0","id":1,"method":"a"} {"jsonrpc":"2.0","id":2,"method":"b"}]`,
	`[{"jsonrpc":"2.0","id":1,"method":"a"},]`,
	`[{"jsonrpc":"2.0","id":1,"method":"a"}]x`,
	`[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","id":2,"method":"b"},{"jsonrpc":"2.0","id":3,"method":"c"},{"jsonrpc":"2.0","id":4,"method":"d"}]`,
	`[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20}`,
	`[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]`,
	// Depth: brackets in strings, escapes, malformed bodies that are also too deep.
	`{"jsonrpc":"2.0","id":1,"method":"a","params":[[[[[[[[[[1]]]]]]]]]]}`,
	`{"jsonrpc":"2.0","id":1,"method":"a","params":["[[[[[[[[[[[[[[["]}`,
	`{"jsonrpc":"2.0","id":1,"method":"a","params":["\\",[[[[[[[[[[1]]]]]]]]]]]}`,
	`{"jsonrpc":"2.0","id":1,"method":x,"params":[[[[[[[[[[[[1]]]]]]]]]]]]}`,
	`{"jsonrpc":"2.0","id":1,"method":"a"} [[[[[[[[[[[[[[[[`,
	`]]]]]]]]]][[[[[[[[[[[`,
	`x"[[[[[[[[[[[[[[[[[[[[`,
	`{"a":"\"[[[[[[[[[[[[[[[[[[[[`,
	`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
	`{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"a":[{"a":[{"a":1}]}]}}}}}}}}}`,
}

func FuzzScanMatchesEncodingJSON(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s), uint8(3), uint8(8))
		f.Add([]byte(s), uint8(0), uint8(0))
	}
	f.Fuzz(func(t *testing.T, body []byte, maxBatch, maxDepth uint8) {
		lim := jsonrpc.Limits{MaxBatch: int(maxBatch % 16), MaxDepth: int(maxDepth % 32)}
		compareWithOracle(t, body, lim)
	})
}

// compareWithOracle fails t unless Parse and ParseRequest answer body
// exactly as the encoding/json-based oracle does.
func compareWithOracle(t *testing.T, body []byte, lim jsonrpc.Limits) {
	t.Helper()
	// The scanner parses a copy that is then overwritten, which also
	// checks that results do not alias the body.
	scratch := bytes.Clone(body)
	got := describeParsed(jsonrpc.Parse(scratch, lim))
	clear(scratch)
	if want := describeParsed(oracleParse(body, lim)); got != want {
		t.Fatalf("Parse(%.300q, %+v):\n got  %.500s\n want %.500s", body, lim, got, want)
	}
	scratch = bytes.Clone(body)
	gotCall := describe(jsonrpc.ParseRequest(scratch, lim.MaxDepth))
	clear(scratch)
	if want := describe(oracleParseRequest(body, lim.MaxDepth)); gotCall != want {
		t.Fatalf("ParseRequest(%.300q, %d):\n got  %.500s\n want %.500s", body, lim.MaxDepth, gotCall, want)
	}
}

// Nesting around encoding/json's own limit of 10000 levels, which is a
// parse error there whatever Limits.MaxDepth says. Kept out of the fuzz
// corpus: bodies this big make the fuzzer's minimizing crawl.
func TestScanNestingLimitMatchesEncodingJSON(t *testing.T) {
	for _, n := range []int{63, 64, 65, 128, 9999, 10000, 10001, 12000} {
		arrays := strings.Repeat("[", n) + strings.Repeat("]", n)
		objects := strings.Repeat(`{"a":`, n-1) + "{}" + strings.Repeat("}", n-1)
		mixed := strings.Repeat(`[{"k":`, n/2) + "1" + strings.Repeat("}]", n/2)
		bodies := []string{
			arrays,
			objects,
			mixed,
			`{"jsonrpc":"2.0","id":1,"method":"a","params":` + arrays[1:len(arrays)-1] + `}`,
			`{"jsonrpc":"2.0","id":1,"method":"a","params":` + mixed[:len(mixed)-1] + `}`,
			`{"jsonrpc":"2.0","id":1,"method":"a","params":` + mixed[:len(mixed)-2] + `}`,
			`[{"jsonrpc":"2.0","id":1,"method":"a","params":` + objects + `}]`,
			`{"jsonrpc":"2.0","id":1,"method":"a","params":` + strings.Repeat(`[ `, n) + strings.Repeat(` ]`, n) + `}`,
			arrays + "x",
			"x" + arrays,
			`{"jsonrpc":"2.0","id":x` + arrays,
		}
		for _, body := range bodies {
			for _, lim := range []jsonrpc.Limits{{MaxBatch: 3}, {MaxBatch: 3, MaxDepth: 8}, {MaxBatch: 3, MaxDepth: n}, {MaxBatch: 3, MaxDepth: 20000}} {
				compareWithOracle(t, []byte(body), lim)
			}
		}
	}
}

// BenchmarkParseRequestEncodingJSON is the replaced parser on the same
// call, for a before/after comparison on the same machine and load.
func BenchmarkParseRequestEncodingJSON(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		c := oracleParseRequest(typicalCall, 64)
		if c.Request == nil {
			b.Fatal(c.Err)
		}
	}
}
