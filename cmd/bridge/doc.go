// Command bridge consumes command envelopes from NATS, JetStream or Kafka and
// performs the matching Azure Web PubSub REST calls (see design.md).
//
// The binary is a thin shell: cobra commands parse flags, load
// bridge.yaml through internal/config, build the components and run them until
// SIGINT or SIGTERM. It holds no business logic.
//
// One file per command: root.go (global flags, logging), version.go,
// validate.go, token.go, emulator.go; run, dev, publish and dlq replay add
// theirs and register in newRootCmd. Helpers shared by commands: app (output
// writers and the logger), addConfigFlag.
//
// Errors: commands return them and never print them; run prints the one
// error once on stderr and exits 1. Commands run on the goroutine that calls
// run; a command that starts goroutines stops them before it returns (on
// SIGINT/SIGTERM its context is cancelled).
package main
