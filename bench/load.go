package main

import (
	"context"
	"slices"
	"sync"
	"time"
)

// loadSpec is how hard and how long a case is driven.
type loadSpec struct {
	clients  int
	warmup   time.Duration
	duration time.Duration
}

// loadResult is what the clients of one case measured in the window.
type loadResult struct {
	// samples are the latencies of successful requests, sorted.
	samples  []time.Duration
	errors   int
	firstErr error
	window   time.Duration
}

// errorPause keeps a client from spinning on a target that fails fast
// (connection refused), which would starve the other processes of CPU.
const errorPause = 10 * time.Millisecond

// runLoad drives spec.clients closed-loop clients: each sends a request,
// waits for the reply and sends the next. All clients run through warm-up
// and measurement without a pause; only requests that start and end inside
// the measurement window count, so the window never includes connection
// setup or ramp-up. onWindow, if set, learns the window before it opens.
func runLoad(ctx context.Context, d driver, w Workload, spec loadSpec, onWindow func(start, end time.Time)) (loadResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	callers := make([]caller, 0, spec.clients)
	defer func() {
		for _, c := range callers {
			c.close()
		}
	}()
	for range spec.clients {
		c, err := d.open(ctx)
		if err != nil {
			return loadResult{}, err
		}
		callers = append(callers, c)
	}

	start := time.Now().Add(spec.warmup)
	end := start.Add(spec.duration)
	if onWindow != nil {
		onWindow(start, end)
	}
	results := make([]loadResult, len(callers))
	var wg sync.WaitGroup
	for i, c := range callers {
		wg.Go(func() { results[i] = drive(ctx, c, w, start, end) })
	}
	wg.Wait()

	total := loadResult{window: spec.duration}
	n := 0
	for _, r := range results {
		n += len(r.samples)
	}
	total.samples = make([]time.Duration, 0, n)
	for _, r := range results {
		total.samples = append(total.samples, r.samples...)
		total.errors += r.errors
		if total.firstErr == nil {
			total.firstErr = r.firstErr
		}
	}
	slices.Sort(total.samples)
	return total, ctx.Err()
}

// drive is one client's loop.
func drive(ctx context.Context, c caller, w Workload, start, end time.Time) loadResult {
	r := loadResult{samples: make([]time.Duration, 0, 4096)}
	var req []byte
	for id := uint64(1); ctx.Err() == nil; id++ {
		req = w.Request(req[:0], id)
		t0 := time.Now()
		if t0.After(end) {
			break
		}
		reply, err := c.call(req)
		t1 := time.Now()
		if err == nil {
			err = w.Check(reply, id)
		}
		counted := !t0.Before(start) && !t1.After(end)
		switch {
		case err == nil && counted:
			r.samples = append(r.samples, t1.Sub(t0))
		case err != nil:
			if counted && ctx.Err() == nil {
				r.errors++
				if r.firstErr == nil {
					r.firstErr = err
				}
			}
			time.Sleep(errorPause)
		}
	}
	return r
}

// sleepUntil waits for t or for ctx to end, reporting which.
func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
