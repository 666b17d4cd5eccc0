// Package testkit holds the few helpers the end-to-end suites (tests/e2e,
// tests/chaos, and the Kafka adapter's tests) share: waiting on broker state
// that has no change signal, reading and evicting Kafka group state, serving
// an emulator. It is imported by tests only.
package testkit

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/wps-bridge/bridge/internal/emulator"
)

// Eventually polls cond every 20 ms until it reports true, failing the test
// with what and cond's last detail when timeout passes. Use it only for state
// that has no change signal (broker counters, HTTP readiness).
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %v: %s", what, timeout, detail)
		}
		<-tick.C
	}
}

// KafkaEvictMembers removes every member of group, as the coordinator does
// when their sessions expire, and returns how many it removed: a SIGKILLed
// member would otherwise hold its partitions for its session timeout. Live
// members rejoin at once.
func KafkaEvictMembers(t testing.TB, cl *kgo.Client, group string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dreq := kmsg.NewPtrDescribeGroupsRequest()
	dreq.Groups = []string{group}
	dresp, err := dreq.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("describe group: %v", err)
	}
	lreq := kmsg.NewPtrLeaveGroupRequest()
	lreq.Group = group
	for _, g := range dresp.Groups {
		for _, m := range g.Members {
			lm := kmsg.NewLeaveGroupRequestMember()
			lm.MemberID = m.MemberID
			lreq.Members = append(lreq.Members, lm)
		}
	}
	if len(lreq.Members) == 0 {
		return 0
	}
	lresp, err := lreq.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("leave group: %v", err)
	}
	if lresp.ErrorCode != 0 {
		t.Fatalf("leave group: error code %d", lresp.ErrorCode)
	}
	return len(lreq.Members)
}

// KafkaCommitted returns group's committed offsets on topic for the given
// partitions; a partition without a commit is absent.
func KafkaCommitted(t testing.TB, cl *kgo.Client, group, topic string, partitions []int32) map[int32]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic, rt.Partitions = topic, partitions
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	out := make(map[int32]int64)
	add := func(name string, partition int32, offset int64) {
		if name == topic && offset >= 0 {
			out[partition] = offset
		}
	}
	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			add(tp.Topic, p.Partition, p.Offset)
		}
	}
	for _, g := range resp.Groups { // the batched form of newer versions
		for _, tp := range g.Topics {
			for _, p := range tp.Partitions {
				add(tp.Topic, p.Partition, p.Offset)
			}
		}
	}
	return out
}

// StartEmulator serves a fresh Web PubSub emulator (development key) on a
// random loopback port until the test ends, and returns it with its base URL.
func StartEmulator(t testing.TB) (*emulator.Emulator, string) {
	t.Helper()
	e, err := emulator.New(emulator.Config{})
	if err != nil {
		t.Fatalf("emulator: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- e.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("emulator Serve: %v", err)
		}
	})
	return e, "http://" + ln.Addr().String()
}
