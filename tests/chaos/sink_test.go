package chaos

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wps-bridge/bridge/internal/emulator"
)

// payload is the data every generated command carries: a unique id, the
// ordering group and its sequence number within the group.
type payload struct {
	ID  string `json:"id"`
	G   int    `json:"g"`
	Seq int    `json:"seq"`
}

// sink is the recording Web PubSub: the emulator (which verifies the HS256
// access-key JWT and answers with exact status codes) behind a front that
// can reset connections, and a hook that records the id of every accepted
// send. Switching to the "other" emulator makes every call fail with 401, as
// after a key rotation the bridge did not get.
type sink struct {
	srv        *httptest.Server
	good, bad  *emulator.Emulator
	useBad     atomic.Bool
	resetRate  atomic.Uint64 // math.Float64bits of the fraction of requests reset
	resets     atomic.Int64
	rejected   atomic.Int64 // answers other than 202
	acceptedN  atomic.Int64 // 202 answers to sends
	connString string

	mu       sync.Mutex
	count    map[string]int // id → accepted sends
	bySeq    map[int][]int  // group → seqs in the order accepted
	times    []time.Time    // when each distinct id was first accepted
	changed  chan struct{}  // closed and replaced on every new distinct id
	statuses map[int]int
}

func newSink(t *testing.T) *sink {
	t.Helper()
	s := &sink{count: map[string]int{}, bySeq: map[int][]int{}, changed: make(chan struct{}), statuses: map[int]int{}}
	var err error
	if s.good, err = emulator.New(emulator.Config{AccessKey: accessKey, NoFanout: true, Logger: fileLogger(t, "emulator")}); err != nil {
		t.Fatalf("emulator: %v", err)
	}
	if s.bad, err = emulator.New(emulator.Config{AccessKey: otherKey, NoFanout: true, Logger: fileLogger(t, "emulator-other-key")}); err != nil {
		t.Fatalf("emulator: %v", err)
	}
	s.good.OnRequest(s.record)
	s.bad.OnRequest(s.record)
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		s.srv.CloseClientConnections()
		s.srv.Close()
		_ = s.good.Close()
		_ = s.bad.Close()
	})
	s.connString = emulator.ConnectionString(s.srv.URL, accessKey)
	addSecret(s.connString, "connection string")
	return s
}

func (s *sink) serve(w http.ResponseWriter, r *http.Request) {
	if rate := math.Float64frombits(s.resetRate.Load()); rate > 0 && rand.Float64() < rate {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				s.resets.Add(1)
				if tc, ok := conn.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // RST, not FIN
				}
				_ = conn.Close()
				return
			}
		}
	}
	if s.useBad.Load() {
		s.bad.Handler().ServeHTTP(w, r)
		return
	}
	s.good.Handler().ServeHTTP(w, r)
}

func (s *sink) record(r emulator.Request) {
	s.mu.Lock()
	s.statuses[r.Status]++
	s.mu.Unlock()
	if !strings.HasPrefix(r.Op, "SendTo") {
		return
	}
	if r.Status != http.StatusAccepted {
		s.rejected.Add(1)
		return
	}
	s.acceptedN.Add(1)
	var p payload
	if err := json.Unmarshal(r.Body, &p); err != nil || p.ID == "" {
		return // not one of ours (a hostile message that happened to be valid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count[p.ID]++
	s.bySeq[p.G] = append(s.bySeq[p.G], p.Seq)
	if s.count[p.ID] == 1 {
		s.times = append(s.times, time.Now())
		close(s.changed)
		s.changed = make(chan struct{})
	}
}

// setFaults sets the emulator's injected faults for the test hub.
func (s *sink) setFaults(f emulator.Faults) { s.good.SetFaults(hub, f) }

// setResetRate makes the front reset that fraction of connections.
func (s *sink) setResetRate(r float64) { s.resetRate.Store(math.Float64bits(r)) }

// distinct is the number of ids accepted at least once.
func (s *sink) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.count)
}

// waitDistinct waits until n distinct ids were accepted; it fails the test
// after timeout, naming how many arrived.
func (s *sink) waitDistinct(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	if !s.awaitDistinct(n, timeout) {
		t.Fatalf("Web PubSub received %d of %d distinct commands within %v (statuses %v)", s.distinct(), n, timeout, s.statusSnapshot())
	}
}

// awaitDistinct reports whether n distinct ids were accepted within timeout.
func (s *sink) awaitDistinct(n int, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		got, ch := len(s.count), s.changed
		s.mu.Unlock()
		if got >= n {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

// awaitAll reports whether every id in ids was accepted within timeout.
func (s *sink) awaitAll(ids []string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	if !s.awaitDistinct(len(ids), timeout) {
		return false
	}
	// Other ids may have counted towards distinct: check the ids themselves,
	// re-checking on every new delivery.
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if n, _ := s.missing(ids); n == 0 {
			return true
		}
		select {
		case <-ch:
		case <-time.After(time.Until(deadline)):
			return false
		}
	}
}

// missing returns the ids of want that were never accepted (at most 10).
func (s *sink) missing(want []string) (n int, sample []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range want {
		if s.count[id] == 0 {
			n++
			if len(sample) < 10 {
				sample = append(sample, id)
			}
		}
	}
	return n, sample
}

// duplicates is the number of accepted sends beyond the first per id.
func (s *sink) duplicates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := 0
	for _, c := range s.count {
		d += c - 1
	}
	return d
}

func (s *sink) statusSnapshot() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int]int, len(s.statuses))
	for k, v := range s.statuses {
		out[k] = v
	}
	return out
}

// firstSeenSince returns the first-acceptance times after t0, in order.
func (s *sink) firstSeenSince(t0 time.Time) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := len(s.times)
	for i > 0 && s.times[i-1].After(t0) {
		i--
	}
	return append([]time.Time(nil), s.times[i:]...)
}

// seqs returns the sequence numbers group g was accepted with, in order.
func (s *sink) seqs(g int) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.bySeq[g]...)
}
