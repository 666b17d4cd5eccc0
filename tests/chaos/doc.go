// Package chaos is the reliability and security suite of the bridge (issue 7):
// the harsher, longer, subprocess-heavy scenarios that tests/e2e does not run.
//
// The bridge under test is the real binary (built once by TestMain from
// ./cmd/bridge) run as subprocesses with `bridge run -c <generated yaml>`,
// SIGKILLed, restarted and scaled out, against in-process brokers (embedded
// nats-server with JetStream, restartable on the same port and store; kfake
// Kafka with request-control hooks and SASL/SCRAM) and a recording Web PubSub
// (the emulator behind a fault-injecting front that can also reset
// connections). Every command carries a unique id in its data so the recorder
// can prove that nothing was lost and count duplicates.
//
// Every process's log output (the bridges' stderr, the emulator's and the
// in-process bridges' slog output) is written to a file and scanned for the
// access key, any JWT and the connection string when the process ends.
//
// Sizes and durations default to the figures. CHAOS_MESSAGES (crash
// test, per broker), CHAOS_SCALE_MESSAGES, CHAOS_SOAK_RATE and
// CHAOS_SOAK_DURATION override them; CHAOS_SEED replays a run's random
// choices; CHAOS_KEEP_LOGS=<dir> keeps every process log. With -short the
// crash and soak scenarios shrink (local iteration only; CI runs the full
// suite). docs/reliability.md holds the method and the measured figures.
//
// The tests run one after another (they load the machine); only the cheap
// in-process ones are parallel.
//
// Everything lives in _test.go files; the package exports nothing.
package chaos
