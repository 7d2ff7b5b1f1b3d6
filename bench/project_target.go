package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// projectGlobal is elara with the memory cache (or redis), projects on,
// and a plan whose limits are never reached: every call pays for the
// lookup, the rate check and the daily counts, and none is refused.
func projectGlobal(redis bool) string {
	store := "\tcache\n"
	if redis {
		store = "\tredis " + redisAddrToken + "\n\tcache {\n\t\tstore redis\n\t}\n"
	}
	return `elara {
	chain ` + chainName + ` {
		node ws://` + nodeAddrToken + `
	}
` + store + `	plan bench {
		requests_per_second 100000000
		requests_per_day    1000000000000
		bytes_per_day       1TB
	}
	projects
}`
}

// projectTarget is elara-memory with every call made through a project
// (/bench/{project}) on a plan with limits, in the embedded store.
type projectTarget struct {
	caddyTarget
	id string
}

func (p *projectTarget) Start(ctx context.Context, env *Env) error {
	return startProject(ctx, env, &p.caddyTarget, &p.id, func() error { return p.caddyTarget.Start(ctx, env) })
}

func (p *projectTarget) URL(t Transport) string { return p.caddyTarget.URL(t) + "/" + p.id }

// redisProjectTarget is elara-redis with every call made through a
// project, projects and limits in the same Redis.
type redisProjectTarget struct {
	redisTarget
	id string
}

func (p *redisProjectTarget) Start(ctx context.Context, env *Env) error {
	return startProject(ctx, env, &p.caddyTarget, &p.id, func() error { return p.redisTarget.Start(ctx, env) })
}

func (p *redisProjectTarget) URL(t Transport) string { return p.caddyTarget.URL(t) + "/" + p.id }

// startProject turns the admin API on (to create the project), starts
// the target and creates the project it is measured through.
func startProject(ctx context.Context, env *Env, c *caddyTarget, id *string, start func() error) error {
	if c.adminPort == 0 {
		port, err := freePort()
		if err != nil {
			return err
		}
		c.adminPort = port
	}
	if err := start(); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.adminURL()+"/elara/projects",
		strings.NewReader(`{"name":"bench","owner":"bench","plan":"bench"}`))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: creating the project: %w", c.name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var p struct{ ID string }
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &p) != nil || p.ID == "" {
		return fmt.Errorf("%s: creating the project: HTTP %d: %s", c.name, resp.StatusCode, body)
	}
	*id = p.ID
	return nil
}
