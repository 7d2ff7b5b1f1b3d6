// Package jobs turns the gateway's call records into statistics: the
// loops of the elara app that outlive a request (recording, aggregation,
// retention) and the Reader the admin API and the dashboard read from.
package jobs
