package app

import (
	"context"
	"testing"
	"time"

	"github.com/wps-bridge/bridge/internal/config"
	"github.com/wps-bridge/bridge/internal/source"
	"github.com/wps-bridge/bridge/internal/source/sourcetest"
)

// The dead-letter publisher owns its NATS connection: once Close returns the
// connection is closed, not still draining in the background.
func TestPublisherCloseClosesItsConnection(t *testing.T) {
	t.Parallel()
	srv := sourcetest.NATSServer(t, nil)
	tests := []struct {
		name string
		dest Destination
	}{
		{"nats", Destination{Type: config.BrokerNATS, URL: srv.ClientURL(), Subject: "dlq.core"}},
		{"jetstream", Destination{Type: config.BrokerJetStream, URL: srv.ClientURL(), Stream: "DLQ", CreateStream: true, Subject: "dlq.js"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			pub, err := NewPublisher(ctx, tc.dest, nil)
			if err != nil {
				t.Fatalf("NewPublisher: %v", err)
			}
			if err := pub.Publish(ctx, &source.Message{Body: []byte("parked")}); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			if err := pub.Close(ctx); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if nc := pub.(*publisher).nc; !nc.IsClosed() {
				t.Fatalf("connection status %v after Close, want CLOSED", nc.Status())
			}
		})
	}
}
