package handler

import (
	"errors"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/elara-gateway/elara/app"
)

// The handler's own log lines about a request say which chain and
// project it was for.
func TestLogLinesNameChainAndProject(t *testing.T) {
	const project = "0123456789abcdef0123456789abcdef"
	cases := []struct {
		name        string
		rt          route
		wantProject any // nil: no project field
	}{
		{"with project", route{chain: &app.Chain{Name: "dev"}, project: project}, project},
		{"without project", route{chain: &app.Chain{Name: "dev"}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zap.DebugLevel)
			h := &Handler{log: zap.New(core)}
			h.clientError(tc.rt, "system_chain", errors.New("unexpected failure"))
			entries := logs.FilterMessage("upstream call failed").All()
			if len(entries) != 1 {
				t.Fatalf("%d log lines, want 1: %v", len(entries), logs.All())
			}
			fields := entries[0].ContextMap()
			if fields["chain"] != "dev" || fields["method"] != "system_chain" {
				t.Errorf("fields %v, want chain dev and method system_chain", fields)
			}
			if got, ok := fields["project"]; tc.wantProject == nil && ok || tc.wantProject != nil && got != tc.wantProject {
				t.Errorf("project field %v (present %v), want %v", got, ok, tc.wantProject)
			}
		})
	}
}
