// Command bridge consumes command envelopes from NATS, JetStream or Kafka and
// performs the matching Azure Web PubSub REST calls (see design.md).
//
// The binary is a thin shell: cobra commands parse flags, load
// bridge.yaml through internal/config, build the components and run them until
// SIGINT or SIGTERM. It holds no business logic.
//
// One file per command, each registered in newRootCmd: root.go (global
// flags, logging), run.go, dev.go, validate.go, token.go, emulator.go,
// publish.go, dlq.go (dlq replay), version.go. Helpers shared by commands:
// app (output writers and the logger), addConfigFlag, pickSource and
// connectPublisher (a broker connection bounded by connectTimeout, so that
// the one-shot commands publish and dlq replay fail rather than hang).
//
// Errors: commands return them and never print them; run prints the one
// error once on stderr and exits 1. Commands run on the goroutine that calls
// run; a command that starts goroutines stops them before it returns (on
// SIGINT/SIGTERM its context is cancelled).
package main
