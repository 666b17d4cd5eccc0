// Package kafkasource is the Kafka adapter of internal/source: a consumer-group
// member built on github.com/segmentio/kafka-go, with AT-LEAST-ONCE delivery
// and commits of the highest CONTIGUOUS finished offset per partition.
//
// It uses kafka-go's ConsumerGroup directly (not the group mode of
// kafka.Reader) because that is where kafka-go exposes the generation: each
// Generation lists this member's partitions, runs goroutines bound to it and
// commits with its id. Per generation the source runs one partition reader
// per assigned partition and one committer.
//
// Commit model: messages finish out of order (router lanes), so each
// partition keeps a window of the offsets handed to Read, in order, with an
// acked flag. The watermark advances only over a gap-free run of acked
// records from the oldest; the committer commits watermarks that moved every
// CommitInterval, when the generation ends (a rebalance: kafka-go waits for
// the generation's goroutines before rejoining, so this commit is still
// accepted), and on Close. A nacked record holds back its partition's
// watermark. Kafka cannot redeliver one record, so the adapter does: Read
// hands a record naked with a retriable error out again after NakDelay, for
// as long as its generation lasts. A record naked with source.ErrShutdown,
// or unfinished when its generation ends, is read again by the partition's
// next owner from the committed offset, together with the acked records after
// it (duplicates, never loss). A window holds at most MaxUnacked records,
// after which the partition pauses.
//
// On a rebalance, records of the ended generation still waiting for Read are
// dropped and acks of its records still in flight no longer commit: the
// partition's next owner starts from the generation's last commit.
//
// Backpressure: Read is called only when the router has room. Fetched records
// wait in a channel of QueueCapacity (plus about 100 per partition inside
// kafka-go's partition readers); when it is full the partition readers block
// and stop fetching.
//
// SASL PLAIN comes from kafka-go; SCRAM-SHA-256/512 is implemented in this
// package (kafka-go's sasl/scram needs a module this project does not use).
//
// Concurrency: Read must be called from one goroutine at a time; Close,
// AckFuncs and [Publisher.Publish] are safe for concurrent use.
package kafkasource
