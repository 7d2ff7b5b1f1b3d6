package handler_test

import (
	"errors"

	"golang.org/x/crypto/bcrypt"
)

func bcryptHash(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	return string(h), err
}

func errorAs(err error, target any) bool { return errors.As(err, target) }
