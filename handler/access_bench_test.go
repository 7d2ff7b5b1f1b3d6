package handler_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/elara-gateway/elara/app"
	"github.com/elara-gateway/elara/internal/fakenode"
	"github.com/elara-gateway/elara/internal/testgw"
	"github.com/elara-gateway/elara/projects"
)

// BenchmarkProjectCallAccess is the access work of one call of a project
// on a plan with every limit set and never reached, in a running gateway
// (bolt store): the project's status, the limits, the call's count and
// its response bytes. "lookup" is the per-call path before project
// handles (a copy of the project, its subject built, counters found by
// key); "handle" is the path admitCall takes now.
func BenchmarkProjectCallAccess(b *testing.B) {
	node := fakenode.Start(b)
	global := chainBlock("dev", testChainOpts, node.URL()) + `
		plan bench {
			requests_per_second 1000000000
			burst 1000000
			requests_per_day 1000000000000000
			bytes_per_day 1TiB
			owner_requests_per_day 1000000000000000
			owner_bytes_per_day 1TiB
		}
` + fmt.Sprintf("\t\tprojects {\n\t\t\tdir %s\n\t\t}\n", b.TempDir())
	testgw.Start(b, global, "\thandle {\n\t\telara_rpc\n\t}")
	x := app.CurrentAccess()
	ids := make([]string, 16)
	for i := range ids {
		p, err := x.Store().Create(context.Background(), projects.CreateRequest{Name: "bench", Owner: "o", Plan: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = p.ID
	}
	ctx := context.Background()
	b.Run("lookup", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				p, ok := x.Store().Lookup(ids[i%len(ids)])
				if !ok || p.Status != projects.Active {
					b.Fatal("project not active")
				}
				s := x.Subject(&p, "127.0.0.1")
				if ex, err := x.Enforcer.Admit(ctx, s); ex != nil || err != nil {
					b.Fatal(ex, err)
				}
				x.Enforcer.AddBytes(s, 100)
				i++
			}
		})
	})
	b.Run("handle", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				h, ok := x.Project(ids[i%len(ids)])
				if !ok || h.Project.Status != projects.Active {
					b.Fatal("project not active")
				}
				s := h.Subject
				s.IP = "127.0.0.1"
				if ex, err := x.Enforcer.AdmitHandle(ctx, h.Limits); ex != nil || err != nil {
					b.Fatal(ex, err)
				}
				x.AddBytes(s, 100)
				i++
			}
		})
	})
}
