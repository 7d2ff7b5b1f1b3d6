package handler_test

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/elara-gateway/elara/handler"
)

// A JSON config with a negative bound is refused by Validate.
func TestFairnessOptionsValidate(t *testing.T) {
	for _, field := range []string{"max_calls_in_flight", "max_connections_per_ip", "max_subscriptions_per_ip"} {
		t.Run(field, func(t *testing.T) {
			var h handler.Handler
			if err := caddy.StrictUnmarshalJSON([]byte(`{"`+field+`":-1}`), &h); err != nil {
				t.Fatal(err)
			}
			h.MaxBatch, h.MaxRequestSize, h.MaxSubscriptions = handler.DefaultMaxBatch, handler.DefaultMaxRequestSize, handler.DefaultMaxSubscriptions
			h.SendQueue, h.SendQueueBytes = handler.DefaultSendQueue, handler.DefaultSendQueueBytes
			h.PingInterval, h.WriteTimeout = caddy.Duration(handler.DefaultPingInterval), caddy.Duration(handler.DefaultWriteTimeout)
			if h.MaxCallsInFlight == 0 {
				h.MaxCallsInFlight = handler.DefaultMaxCallsInFlight
			}
			if h.MaxConnectionsPerIP == 0 {
				h.MaxConnectionsPerIP = handler.DefaultMaxConnectionsPerIP
			}
			if h.MaxSubscriptionsPerIP == 0 {
				h.MaxSubscriptionsPerIP = handler.DefaultMaxSubscriptionsPerIP
			}
			err := h.Validate()
			if err == nil || !strings.Contains(err.Error(), field) {
				t.Fatalf("Validate: %v, want a refusal naming %s", err, field)
			}
		})
	}
}
