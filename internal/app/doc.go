// Package app wires a validated configuration into a running bridge: the Web
// PubSub client, the codec, one source adapter per configured source, the
// dead-letter publisher, the router, Prometheus metrics, OpenTelemetry
// propagation, and the operations endpoint (/metrics, /healthz, /readyz).
//
// It also owns the dev environment (an embedded nats-server with JetStream and
// the Web PubSub emulator around a bridge) that `bridge dev` runs and that the
// tests use to prove a fresh checkout works end to end.
//
// The package holds no business logic: every decision about messages is the
// router's. cmd/bridge only parses flags and calls into it.
package app
