package limits

import (
	"sync"
	"time"
)

// Conns counts open WebSocket connections per key (project or client IP)
// in this gateway, for the connections limit. It is per gateway: with
// several gateways each admits up to the limit.
type Conns struct {
	mu   sync.Mutex
	open map[string]int64
}

// NewConns returns an empty counter.
func NewConns() *Conns { return &Conns{open: make(map[string]int64)} }

// Acquire counts one more connection of scope and id unless limit (0:
// none) is reached; release, called once when the connection closes,
// gives it back.
func (c *Conns) Acquire(scope, id string, limit int64) (release func(), x *Exceeded) {
	key := scope + ":" + id
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.open[key]
	if limit > 0 && n >= limit {
		return nil, &Exceeded{Limit: Connections, Scope: scope, Value: float64(limit), Used: n, RetryAfter: time.Second}
	}
	c.open[key] = n + 1
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.open[key] <= 1 {
				delete(c.open, key) // memory follows open connections only
			} else {
				c.open[key]--
			}
		})
	}, nil
}

// Open is the number of open connections of scope and id.
func (c *Conns) Open(scope, id string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open[scope+":"+id]
}
