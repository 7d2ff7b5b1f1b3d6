package main

import (
	"context"
	"fmt"
	"time"
)

// driver opens the clients of one case over one transport and owns what
// they share (an HTTP connection pool).
type driver interface {
	// open makes one client; ctx ends its use (closing its connection).
	open(ctx context.Context) (caller, error)
	close()
}

// caller is one closed-loop client: one request in flight at a time.
type caller interface {
	// call sends req and returns the reply, valid until the next call.
	call(req []byte) ([]byte, error)
	close()
}

func newDriver(t Transport, url string, clients int, timeout time.Duration, deflate bool) (driver, error) {
	switch t {
	case HTTP:
		return newHTTPDriver(url, clients, timeout), nil
	case WS:
		return &wsDriver{url: url, timeout: timeout, deflate: deflate}, nil
	}
	return nil, fmt.Errorf("no driver for transport %q", t)
}
