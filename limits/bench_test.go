package limits

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/elara-gateway/elara/cacher/cachertest"
)

// The cost of one Admit, embedded (bbolt counters, local rate) and with
// Redis (Redis counters, shared rate), for a project whose limits are
// never reached: what every call pays. "subject" resolves the subject's
// counters on every call (Admit), "handle" once (AdmitHandle), as the
// gateway does per project.
func BenchmarkAdmit(b *testing.B) {
	lim := Limits{RequestsPerSecond: 1e9, Burst: 1e9, RequestsPerDay: 1e15, BytesPerDay: 1e15}
	run := func(b *testing.B, e *Enforcer, handles bool) {
		ctx := context.Background()
		subjects := make([]Subject, 64)
		hs := make([]*Handle, len(subjects))
		for i := range subjects {
			subjects[i] = Subject{Project: "p" + strconv.Itoa(i), Owner: "o", Limits: lim, OwnerRequestsPerDay: 1e15}
			hs[i] = e.Handle(subjects[i])
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				var x *Exceeded
				var err error
				if handles {
					x, err = e.AdmitHandle(ctx, hs[i%len(hs)])
				} else {
					x, err = e.Admit(ctx, subjects[i%len(subjects)])
				}
				if x != nil || err != nil {
					b.Fatal(x, err)
				}
				i++
			}
		})
	}
	for _, mode := range []struct {
		name    string
		handles bool
	}{{"subject", false}, {"handle", true}} {
		b.Run("embedded/"+mode.name, func(b *testing.B) {
			bc, _ := NewBoltCounters(openBoltB(b, filepath.Join(b.TempDir(), "c.db")))
			c := NewCounters(bc, CountersOptions{FlushInterval: time.Second})
			defer c.Close()
			run(b, NewEnforcer(Local(NewRateLimiter(0, nil)), c), mode.handles)
		})
		b.Run("redis/"+mode.name, func(b *testing.B) {
			r := cachertest.StartRedis(b)
			client := redisClientB(b, r.Addr)
			c := NewCounters(NewRedisCounters(client, ""), CountersOptions{})
			defer c.Close()
			run(b, NewEnforcer(NewSharedRateLimiter(client, SharedRateOptions{}), c), mode.handles)
		})
	}
}
