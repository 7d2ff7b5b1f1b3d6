package handler_test

import (
	"errors"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/elara-gateway/elara/app"

	"golang.org/x/crypto/bcrypt"
)

func bcryptHash(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	return string(h), err
}

func errorAs(err error, target any) bool { return errors.As(err, target) }

func appReports() []app.ChainReport { return app.Reports() }

func stopCaddy(t *testing.T) {
	if err := caddy.Stop(); err != nil {
		t.Logf("stopping caddy: %v", err)
	}
}
