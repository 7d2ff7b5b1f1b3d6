// Package caddyarg reads the arguments of elara's Caddyfile options, for
// the elara app and the elara_rpc handler alike, so that every option of
// a kind (a duration, a size, a count) reads the same way. Each reader
// takes the option's one argument and refuses a second; its errors name
// the option and, through the dispenser, the file and line.
package caddyarg

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"
)

// MaxSize is the largest size accepted: 1 TiB.
const MaxSize = 1 << 40

// one reads the single argument of the option the dispenser is on, and
// the option's name, for errors.
func one(d *caddyfile.Dispenser) (opt, arg string, err error) {
	opt = d.Val()
	if !d.NextArg() {
		return opt, "", d.Errf("%s: wrong argument count: takes one argument, got none", opt)
	}
	arg = d.Val()
	if d.NextArg() {
		return opt, "", d.Errf("%s: wrong argument count: takes one argument, got more after '%s'", opt, arg)
	}
	return opt, arg, nil
}

// Duration reads a duration greater than zero, such as `5s` or `1d`.
func Duration(d *caddyfile.Dispenser) (caddy.Duration, error) {
	return duration(d, false)
}

// DurationOrZero reads a duration of zero or more, for options where
// zero turns something off.
func DurationOrZero(d *caddyfile.Dispenser) (caddy.Duration, error) {
	return duration(d, true)
}

func duration(d *caddyfile.Dispenser, zeroOK bool) (caddy.Duration, error) {
	opt, arg, err := one(d)
	if err != nil {
		return 0, err
	}
	dur, perr := caddy.ParseDuration(arg)
	if perr != nil {
		return 0, d.Errf("%s: bad duration '%s': %v", opt, arg, perr)
	}
	switch {
	case dur < 0:
		return 0, d.Errf("%s: duration '%s' is negative", opt, arg)
	case dur == 0 && !zeroOK:
		return 0, d.Errf("%s: duration '%s' must be more than zero", opt, arg)
	}
	return caddy.Duration(dur), nil
}

// Size reads a size in bytes greater than zero, such as `16MiB`, `64KB`
// or `1000000`, of at most MaxSize.
func Size(d *caddyfile.Dispenser) (int64, error) {
	opt, arg, err := one(d)
	if err != nil {
		return 0, err
	}
	n, perr := humanize.ParseBytes(arg)
	switch {
	case perr != nil:
		return 0, d.Errf("%s: bad size '%s' (a number of bytes, or with a unit such as KiB, MiB)", opt, arg)
	case n == 0:
		return 0, d.Errf("%s: size '%s' must be more than zero", opt, arg)
	case n > MaxSize:
		return 0, d.Errf("%s: size '%s' is over 1TiB", opt, arg)
	}
	return int64(n), nil
}

// Count reads a whole number greater than zero.
func Count(d *caddyfile.Dispenser) (int, error) {
	return count(d, false)
}

// CountOrZero reads a whole number of zero or more.
func CountOrZero(d *caddyfile.Dispenser) (int, error) {
	return count(d, true)
}

func count(d *caddyfile.Dispenser, zeroOK bool) (int, error) {
	opt, arg, err := one(d)
	if err != nil {
		return 0, err
	}
	n, perr := strconv.Atoi(arg)
	switch {
	case perr != nil:
		return 0, d.Errf("%s: bad number '%s'", opt, arg)
	case n < 0:
		return 0, d.Errf("%s: number '%s' is negative", opt, arg)
	case n == 0 && !zeroOK:
		return 0, d.Errf("%s: number '%s' must be more than zero", opt, arg)
	}
	return n, nil
}

// String reads one word.
func String(d *caddyfile.Dispenser) (string, error) {
	_, arg, err := one(d)
	return arg, err
}

// OnOff reads an optional on|off; the bare option means on.
func OnOff(d *caddyfile.Dispenser) (bool, error) {
	opt := d.Val()
	if !d.NextArg() {
		return true, nil
	}
	var on bool
	switch d.Val() {
	case "on":
		on = true
	case "off":
	default:
		return false, d.Errf("%s: expected on or off, got '%s'", opt, d.Val())
	}
	if d.NextArg() {
		return false, d.Errf("%s: wrong argument count: takes at most one argument (on or off)", opt)
	}
	return on, nil
}
