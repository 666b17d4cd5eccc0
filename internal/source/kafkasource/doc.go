// Package kafkasource is the Kafka adapter of internal/source: a consumer-group
// member built on github.com/twmb/franz-go, with AT-LEAST-ONCE delivery and
// commits of the highest CONTIGUOUS finished offset per partition, and the
// Kafka [Publisher] used for dead letters and `bridge publish`.
//
// Reading: Read takes records in batches from the client's fetch buffer
// (PollRecords, up to QueueCapacity at a time) and hands them out one by one
// on the caller's goroutine; there is no goroutine per partition and no
// channel hand-off per record. Backpressure: Read is called only when the
// router has room, and franz-go fetches again only once the records it
// buffered were polled, so memory is bounded by one fetch per broker
// (MaxBytes, default 1 MiB, at most 256 KiB per partition, counted
// compressed) plus the records the router holds.
//
// Commit model: messages finish out of order (router lanes), so each
// assigned partition keeps a window of the offsets handed to Read, in order,
// with an acked flag. The watermark advances only over a gap-free run of
// acked records from the oldest; a committer commits the watermarks that
// moved every CommitInterval, when partitions are revoked (franz-go holds
// the rebalance until the revoke callback's blocking commit returns, so the
// commit is still accepted), and on Close. A nacked record holds back its
// partition's watermark. Kafka cannot redeliver one record, so the adapter
// does: Read hands a record naked with a retriable error out again after
// NakDelay, for as long as its partition stays assigned. A record naked with
// source.ErrShutdown, or unfinished when its partition is revoked, is read
// again by the partition's next owner from the committed offset, together
// with the acked records after it (duplicates, never loss). A window holds
// at most MaxUnacked records; at the bound Read waits for the partition's
// oldest record.
//
// Rebalances are cooperative (franz-go's cooperative-sticky balancer): only
// the partitions that move are revoked. Records of a revoked or lost
// partition still waiting for Read are dropped and acks of its records in
// flight no longer commit: the partition's next owner starts from its last
// commit.
//
// SASL PLAIN and SCRAM-SHA-256/512 and TLS come from franz-go.
//
// Concurrency: Read must be called from one goroutine at a time; Close,
// AckFuncs and [Publisher.Publish] are safe for concurrent use.
package kafkasource
