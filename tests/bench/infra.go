package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Stream, subjects and topics of the benchmark.
const (
	benchStream   = "BENCH"
	subjDrain     = "bench.drain"
	subjBurst     = "bench.burst"
	subjMem       = "bench.mem"
	topicDrain    = "drain"
	topicBurst    = "burst"
	topicMem      = "mem"
	topicDLQ      = "dlq"
	benchHub      = "bench"
	subjLivePre   = "bench.live."
	topicLivePre  = "live-"
	burstGroup    = "burst"
	publishWindow = 4096 // JetStream async publishes in flight while preloading
)

// infra is the parent's brokers: an embedded nats-server with JetStream and a
// kfake cluster, with a publisher for each.
type infra struct {
	dir     string
	ns      *server.Server
	nc      *nats.Conn
	js      jetstream.JetStream
	kf      *kfake.Cluster
	brokers []string
	kcl     *kgo.Client
}

func startInfra(ctx context.Context, sources []string, partitions int32, liveTopics []string) (_ *infra, err error) {
	in := &infra{}
	defer func() {
		if err != nil {
			in.close()
		}
	}()
	if in.dir, err = os.MkdirTemp("", "wpsbench-*"); err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	for _, s := range sources {
		switch s {
		case srcJetStream:
			if err := in.startNATS(ctx); err != nil {
				return nil, err
			}
		case srcKafka:
			if err := in.startKafka(partitions, liveTopics); err != nil {
				return nil, err
			}
		}
	}
	return in, nil
}

func (in *infra) startNATS(ctx context.Context) error {
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: in.dir,
	})
	if err != nil {
		return fmt.Errorf("nats-server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return errors.New("nats-server: not ready after 10s")
	}
	in.ns = ns
	if in.nc, err = nats.Connect(ns.ClientURL(), nats.Name("wpsbench-publisher")); err != nil {
		return fmt.Errorf("nats connect: %w", err)
	}
	if in.js, err = jetstream.New(in.nc, jetstream.WithPublishAsyncMaxPending(publishWindow)); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if _, err := in.js.CreateStream(ctx, jetstream.StreamConfig{Name: benchStream, Subjects: []string{"bench.>"}}); err != nil {
		return fmt.Errorf("create stream: %w", err)
	}
	return nil
}

func (in *infra) startKafka(partitions int32, liveTopics []string) error {
	topics := append([]string{topicDrain, topicBurst, topicMem, topicDLQ}, liveTopics...)
	kf, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		return fmt.Errorf("kfake: %w", err)
	}
	in.kf, in.brokers = kf, kf.ListenAddrs()
	in.kcl, err = kgo.NewClient(kgo.SeedBrokers(in.brokers...), kgo.ProducerLinger(0),
		kgo.MaxBufferedRecords(publishWindow*4))
	if err != nil {
		return fmt.Errorf("kafka producer: %w", err)
	}
	return nil
}

func (in *infra) natsURL() string {
	if in.ns == nil {
		return ""
	}
	return in.ns.ClientURL()
}

func (in *infra) close() {
	if in.kcl != nil {
		in.kcl.Close()
	}
	if in.kf != nil {
		in.kf.Close()
	}
	if in.nc != nil {
		in.nc.Close()
	}
	if in.ns != nil {
		in.ns.Shutdown()
		in.ns.WaitForShutdown()
	}
	if in.dir != "" {
		_ = os.RemoveAll(in.dir)
	}
}

// publisher sends benchmark envelopes to one subject or topic.
type publisher struct {
	in      *infra
	src     string
	subject string // JetStream subject or Kafka topic
	kerr    chan error
}

func (in *infra) publisher(src, subject string) *publisher {
	return &publisher{in: in, src: src, subject: subject, kerr: make(chan error, 1)}
}

// publish sends body asynchronously; key is the Kafka record key.
func (p *publisher) publish(ctx context.Context, body []byte, key string) error {
	switch p.src {
	case srcJetStream:
		// A full async window waits for room (a loaded machine acks slowly)
		// instead of failing after the default 200 ms stall.
		if _, err := p.in.js.PublishAsync(p.subject, body, jetstream.WithStallWait(30*time.Second)); err != nil {
			return fmt.Errorf("jetstream publish: %w", err)
		}
	case srcKafka:
		select {
		case err := <-p.kerr:
			return err
		default:
		}
		p.in.kcl.Produce(ctx, &kgo.Record{Topic: p.subject, Key: []byte(key), Value: body}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case p.kerr <- fmt.Errorf("kafka produce: %w", err):
				default:
				}
			}
		})
	}
	return nil
}

// flush waits until every published message is stored.
func (p *publisher) flush(ctx context.Context) error {
	switch p.src {
	case srcJetStream:
		select {
		case <-p.in.js.PublishAsyncComplete():
		case <-ctx.Done():
			return ctx.Err()
		}
	case srcKafka:
		if err := p.in.kcl.Flush(ctx); err != nil {
			return fmt.Errorf("kafka flush: %w", err)
		}
		select {
		case err := <-p.kerr:
			return err
		default:
		}
	}
	return nil
}

// preload publishes n envelopes to subject: sendToGroup over groups groups
// (one group when groups is 1), each with a payloadBytes JSON payload.
func (in *infra) preload(ctx context.Context, src, subject string, n, groups, payloadBytes int) error {
	p := in.publisher(src, subject)
	var e envelopeBuilder
	ts := time.Now().UnixNano()
	for i := range n {
		g := i % groups
		if err := p.publish(ctx, e.build(g, groups, i, ts, payloadBytes), groupName(g, groups)); err != nil {
			return err
		}
		if i%publishWindow == publishWindow-1 && ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return p.flush(ctx)
}

// settled reports whether the consumer or group consumed and acknowledged
// everything: JetStream, no message pending or unacked for the durable;
// Kafka, the group's committed offsets add up to the records of topics.
func (in *infra) settled(ctx context.Context, src, durable string, topics []string, want int64) (bool, string, error) {
	switch src {
	case srcJetStream:
		cons, err := in.js.Consumer(ctx, benchStream, durable)
		if err != nil {
			return false, "", fmt.Errorf("consumer %s: %w", durable, err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return false, "", fmt.Errorf("consumer %s info: %w", durable, err)
		}
		state := fmt.Sprintf("pending %d, ack pending %d, redelivered %d", info.NumPending, info.NumAckPending, info.NumRedelivered)
		return info.NumPending == 0 && info.NumAckPending == 0, state, nil
	case srcKafka:
		committed, err := in.committed(ctx, durable, topics)
		if err != nil {
			return false, "", err
		}
		return committed == want, fmt.Sprintf("committed %d of %d", committed, want), nil
	}
	return false, "", fmt.Errorf("unknown source %q", src)
}

// committed sums the committed offsets of group on topics.
func (in *infra) committed(ctx context.Context, group string, topics []string) (int64, error) {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	for _, t := range topics {
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic = t
		for p := range kafkaPartitions {
			rt.Partitions = append(rt.Partitions, p)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, in.kcl)
	if err != nil {
		return 0, fmt.Errorf("offset fetch %s: %w", group, err)
	}
	if resp.ErrorCode != 0 {
		return 0, fmt.Errorf("offset fetch %s: error code %d", group, resp.ErrorCode)
	}
	var sum int64
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.Offset > 0 {
				sum += p.Offset
			}
		}
	}
	return sum, nil
}

// waitSettled polls settled (the broker offers no notification) until true,
// bounded by timeout.
func (in *infra) waitSettled(ctx context.Context, src, durable string, topics []string, want int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, state, err := in.settled(ctx, src, durable, topics, want)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s %s not settled after %s: %s", src, durable, timeout, state)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// kafkaPartitions is the partition count of every benchmark topic.
var kafkaPartitions int32 = 4

// groupName is the name of group g of n.
func groupName(g, n int) string {
	if n == 1 {
		return burstGroup
	}
	return "g" + strconv.Itoa(g)
}
