// Command bench is the reproducible benchmark of wps-bridge (issue 6).
//
// It starts an embedded nats-server with JetStream, a kfake Kafka cluster and
// a counting Web PubSub sink, preloads envelopes, and measures two systems on
// the same data with the same settings: the bridge, built the production way
// (bridge.yaml → config.Parse → app.New → Run, with ordering lanes, retries,
// metrics and a dead letter enabled), and a minimal reference loop written
// here (consume, decode, sign, POST with a plain http.Client, ack). Each
// measured system runs in its own child process (the program re-executes
// itself with the WPSBENCH_CHILD environment variable set), so CPU time,
// allocations and peak RSS are per system. It prints one table with the
// figures and the bridge/reference ratio for JetStream and Kafka, and, on
// request, the coalescing comparison and the 1M-message memory test.
//
// Usage:
//
//	go run ./tests/bench [-n 200000] [-rate 2000] [-duration 20s]
//	    [-sources jetstream,kafka] [-coalesce] [-memtest] [-quick]
//	    [-sink minimal|emulator] [-cpuprofile prefix] [-memprofile prefix]
//
// docs/performance.md describes the method and records the results.
//
// The program's pieces are used by one goroutine each unless said otherwise;
// the sink is safe for concurrent use (it is an HTTP handler).
package main
