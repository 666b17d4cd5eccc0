// Package e2e holds the end-to-end suites of the bridge core (issue 4): real
// in-process brokers (an embedded nats-server with JetStream, a kfake Kafka
// cluster), a recording Web PubSub server that verifies the HS256 access-key
// token (or the emulator), and bridges built the way production builds them:
// bridge.yaml text through config.Parse (or config.Load) and app.New, run with
// Bridge.Run.
//
// Everything lives in the _test.go files; this package exports nothing. When
// NATS_URL is set the NATS and JetStream suites also run against that server,
// with unique stream, subject and durable names that are deleted at the end.
package e2e
