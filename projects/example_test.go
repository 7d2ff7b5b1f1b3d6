package projects_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/elara-gateway/elara/limits"
	"github.com/elara-gateway/elara/projects"
)

// How the pieces fit on one call: the store finds the project, the
// enforcer checks and counts, and a daily refusal suspends the project
// until the reset.
func Example() {
	dir, _ := os.MkdirTemp("", "elara-example")
	defer os.RemoveAll(dir)

	plans, _ := limits.NewPlans(limits.Plan{Name: "normal", Limits: limits.Limits{RequestsPerSecond: 5, RequestsPerDay: 2}})
	store, err := projects.OpenBolt(dir, projects.BoltOptions{KnownPlan: plans.Has})
	if err != nil {
		panic(err)
	}
	defer store.Close()
	backend, _ := limits.NewBoltCounters(store.DB()) // same file: a process opens it once
	counters := limits.NewCounters(backend, limits.CountersOptions{Days: limits.NewDays(time.UTC)})
	defer counters.Close()
	enforcer := limits.NewEnforcer(limits.Local(limits.NewRateLimiter(0, nil)), counters)

	ctx := context.Background()
	p, _ := store.Create(ctx, projects.CreateRequest{Name: "wallet", Owner: "acme", Plan: "normal", Chains: []string{"polkadot"}})

	call := func(id, chain string, ip netip.Addr) error {
		p, ok := store.Lookup(id)
		switch {
		case !ok:
			return errors.New("404 unknown project")
		case p.StatusAt(time.Now()) != projects.Active:
			return fmt.Errorf("403 project %s", p.StatusAt(time.Now()))
		case !p.AllowsChain(chain) || !p.AllowsIP(ip):
			return errors.New("403 not allowed")
		}
		plan := plans[p.Plan]
		x, err := enforcer.Admit(ctx, limits.Subject{Project: p.ID, Owner: p.Owner, IP: ip.String(),
			Limits: p.EffectiveLimits(plan), OwnerRequestsPerDay: plan.OwnerRequestsPerDay, OwnerBytesPerDay: plan.OwnerBytesPerDay})
		if err != nil {
			return err
		}
		if x != nil {
			if x.Daily() && x.Scope == limits.ScopeProject {
				_, _ = projects.Suspend(ctx, store, p.ID, x.ResetAt)
			}
			return fmt.Errorf("429 -32029 %s", x.Limit)
		}
		enforcer.AddBytes(limits.Subject{Project: p.ID, Owner: p.Owner}, 100) // the answer's size
		return nil
	}
	ip := netip.MustParseAddr("192.0.2.1")
	for range 4 {
		fmt.Println(call(p.ID, "polkadot", ip))
	}
	fmt.Println(call(p.ID, "kusama", ip))
	fmt.Println(call(projects.NewID(), "polkadot", ip))
	// Output:
	// <nil>
	// <nil>
	// 429 -32029 requests_per_day
	// 403 project suspended
	// 403 project suspended
	// 404 unknown project
}
