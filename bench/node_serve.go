package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/elara-gateway/elara/internal/fakenode"
)

// serveNode is the child side of nodeProc: it runs a fake node until in
// closes, answering control commands, one line each:
//
//	calls <method>   requests received for method
//	total            requests received for any method
//	conns            open WebSocket connections
//	subs <method>    open subscriptions made by a subscribe method
//	new-block        produce a block (notifies subscribers); prints its number
//	set-storage <key> <value>  set a storage key (0x hex) at the best block
//	best-hash        the best block's hash
//
// Errors are answered as "error <message>".
func serveNode(in io.Reader, out io.Writer) error {
	n, err := fakenode.New()
	if err != nil {
		return err
	}
	defer n.Close()
	if _, err := fmt.Fprintf(out, "addr %s\n", n.Addr()); err != nil {
		return err
	}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		if _, err := fmt.Fprintln(out, nodeCommand(n, sc.Text())); err != nil {
			return err
		}
	}
	return sc.Err()
}

func nodeCommand(n *fakenode.Node, line string) string {
	f := strings.Fields(line)
	if len(f) == 0 {
		return "error empty command"
	}
	arg := func() (string, bool) {
		if len(f) != 2 {
			return "", false
		}
		return f[1], true
	}
	switch f[0] {
	case "calls":
		if m, ok := arg(); ok {
			return strconv.Itoa(n.Calls(m))
		}
	case "subs":
		if m, ok := arg(); ok {
			return strconv.Itoa(n.ActiveSubscriptions(m))
		}
	case "total":
		return strconv.Itoa(n.TotalCalls())
	case "conns":
		return strconv.Itoa(n.Connections())
	case "set-storage":
		if len(f) == 3 && strings.HasPrefix(f[1], "0x") && strings.HasPrefix(f[2], "0x") {
			n.Chain().SetStorage(f[1], f[2])
			return "ok"
		}
		return "error usage: set-storage <0xkey> <0xvalue>"
	case "best-hash":
		return n.Chain().Best().Hash
	case "new-block":
		return strconv.FormatUint(n.Chain().NewBlock().Number, 10)
	case "new-block-finalized":
		b := n.Chain().NewBlockFinalized()
		return strconv.FormatUint(b.Number, 10) + " " + b.Hash
	default:
		return "error unknown command " + strconv.Quote(f[0])
	}
	return "error usage: " + f[0] + " <method>"
}
