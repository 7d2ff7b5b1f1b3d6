//go:build race

package handler_test

// raceEnabled reports a -race build, whose memory use is not the
// gateway's own.
const raceEnabled = true
