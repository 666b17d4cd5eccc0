// Package sourcetest is the conformance suite every source.Source adapter
// passes (natssource, jetstreamsource, kafkasource): messages arrive with
// their body and headers, acks are durable across a reopen, naks redeliver,
// cancelling a Read returns promptly, Close unblocks a Read with
// source.ErrEndOfInput, and in-order and out-of-order acks commit what they
// should. Adapter tests call [Run] with a [Harness] over a real broker
// (embedded nats-server, kfake).
//
// Run starts parallel subtests; Harness functions must be safe for
// concurrent use across different *testing.T values.
package sourcetest
