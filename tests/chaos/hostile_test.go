package chaos

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/wps-bridge/bridge/internal/codec"
	"github.com/wps-bridge/bridge/internal/source"
	"github.com/wps-bridge/bridge/tests/testkit"
)

// corpusEntry is one seed of the codec's fuzz corpus: a body and, for
// header-mode seeds, the headers it is sent with.
type corpusEntry struct {
	body    []byte
	headers [][2]string
}

// loadCorpus reads internal/codec/testdata/fuzz/FuzzDecode. A seed that
// starts with "#k=v;k=v\n" carries headers on its first line (the codec fuzz
// test's convention); @subject and @key entries are ignored here.
func loadCorpus(t *testing.T) []corpusEntry {
	t.Helper()
	dir := filepath.Join("..", "..", "internal", "codec", "testdata", "fuzz", "FuzzDecode")
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("fuzz corpus: %v", err)
	}
	var out []corpusEntry
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			t.Fatalf("corpus %s: %v", f.Name(), err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			q, ok := strings.CutPrefix(line, "[]byte(")
			if !ok {
				continue
			}
			in, err := strconv.Unquote(strings.TrimSuffix(q, ")"))
			if err != nil {
				t.Fatalf("corpus %s: %v", f.Name(), err)
			}
			e := corpusEntry{body: []byte(in)}
			if strings.HasPrefix(in, "#") {
				head, body, _ := strings.Cut(in[1:], "\n")
				e.body = []byte(body)
				for kv := range strings.SplitSeq(head, ";") {
					k, v, _ := strings.Cut(kv, "=")
					if k != "" && !strings.HasPrefix(k, "@") {
						e.headers = append(e.headers, [2]string{k, v})
					}
				}
			}
			out = append(out, e)
		}
	}
	if len(out) < 10 {
		t.Fatalf("fuzz corpus: only %d seeds in %s", len(out), dir)
	}
	return out
}

// mutate applies one to four random edits to body: flip, delete, insert,
// duplicate, truncate, or swap a JSON token for a hostile one.
func mutate(rnd *rand.Rand, body []byte) []byte {
	b := bytes.Clone(body)
	tokens := [][]byte{[]byte(`"`), []byte(`{`), []byte(`]`), []byte(`null`), []byte(`"\ud800"`), []byte(`1e999`),
		[]byte(`"actionName":"nope"`), []byte(`"ttl":301`), []byte(`"group":"$bad\n"`), []byte("\xff\xfe"), []byte(`,,`),
		bytes.Repeat([]byte(`[`), 20_000)}
	for range 1 + rnd.IntN(4) {
		if len(b) == 0 {
			b = append(b, tokens[rnd.IntN(len(tokens))]...)
			continue
		}
		i := rnd.IntN(len(b))
		switch rnd.IntN(6) {
		case 0:
			b[i] ^= byte(1 << rnd.IntN(8))
		case 1:
			b = append(b[:i], b[min(len(b), i+1+rnd.IntN(8)):]...)
		case 2:
			b = append(b[:i], append(bytes.Clone(tokens[rnd.IntN(len(tokens))]), b[i:]...)...)
		case 3:
			j := min(len(b), i+1+rnd.IntN(16))
			b = append(b[:j], append(bytes.Clone(b[i:j]), b[j:]...)...)
		case 4:
			b = b[:i]
		case 5:
			b[i] = byte(rnd.IntN(256))
		}
	}
	return b
}

// TestHostileInput mixes 10,000 mutated envelopes from the codec's fuzz
// corpus into 2,000 good commands on one JetStream stream: every mutant the
// codec rejects is dead-lettered with a reason, the process never panics and
// the good traffic arrives complete and in order per group.
func TestHostileInput(t *testing.T) {
	const (
		hostile    = 10_000
		good       = 2_000
		goodGroups = 8
	)
	rnd := seeded(t)
	corpus := loadCorpus(t)
	dec, err := codec.New(codec.Config{DefaultHub: hub})
	if err != nil {
		t.Fatalf("codec: %v", err)
	}

	s := newSink(t)
	ns := startNATS(t, nil)
	_, js := connectJS(t, ns.url())
	createStream(t, js, cmdStream, "chaos.>")

	var msgs []*nats.Msg
	invalid := map[string]string{} // chaos id → the codec's reason
	validMutants := 0
	var goodIDs []string
	for i, h := 0, 0; i < good || h < hostile; {
		if i < good && (h >= hostile || rnd.IntN(6) == 0) {
			p := payload{ID: fmt.Sprintf("good-%d", i), G: 1000 + i%goodGroups, Seq: i / goodGroups}
			msgs = append(msgs, envelopeMsg(cmdSubject, p))
			goodIDs = append(goodIDs, p.ID)
			i++
			continue
		}
		e := corpus[rnd.IntN(len(corpus))]
		m := nats.NewMsg("chaos.hostile")
		id := fmt.Sprintf("h-%d", h)
		m.Header.Set("Chaos-Id", id)
		for _, kv := range e.headers {
			m.Header.Set(kv[0], kv[1])
		}
		m.Data = mutate(rnd, e.body)
		msgs = append(msgs, m)
		// Classify with the bridge's own decoder, configured as the bridge is.
		sm := &source.Message{Source: "js", Subject: m.Subject, Body: m.Data}
		for k, vs := range m.Header {
			for _, v := range vs {
				sm.Headers = append(sm.Headers, source.Header{Key: k, Value: v})
			}
		}
		sm.Headers = append(sm.Headers, source.Header{Key: "Nats-Msg-Id", Value: id})
		if _, err := dec.Decode(sm); err != nil {
			invalid[id] = err.Error()
		} else {
			validMutants++
		}
		h++
	}
	t.Logf("%d hostile messages: %d rejected by the codec, %d still valid (sent on, or refused by Web PubSub)", hostile, len(invalid), validMutants)

	b := startBridge(t, "bridge", bridgeYAML(jsSourceYAML("js", ns.url(), cmdStream, "chaos.>", "bridge", ""),
		jsDLQYAML(dlqStream, dlqSubject), freeAddr(t), ""), map[string]string{envConn: s.connString})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	if err := jsPublish(ctx, js, msgs); err != nil {
		t.Fatal(err)
	}
	s.waitDistinct(t, good, 3*time.Minute)

	// Every message is settled once the durable has nothing pending and
	// nothing unacked: a message is acked only after its dead letter was
	// confirmed. (Counting the dead letter is not enough: valid mutants that
	// Web PubSub refuses are parked too.)
	testkit.Eventually(t, 2*time.Minute, "every message settled", func() (bool, string) {
		c, err := js.Consumer(ctx, cmdStream, "bridge")
		if err != nil {
			return false, err.Error()
		}
		ci, err := c.Info(ctx)
		if err != nil {
			return false, err.Error()
		}
		return ci.NumPending == 0 && ci.NumAckPending == 0, fmt.Sprintf("%d pending, %d unacked", ci.NumPending, ci.NumAckPending)
	})
	// Every rejected mutant must be on the dead letter, each with a reason.
	dl := streamMsgs(t, js, dlqStream)
	reasons := map[string]string{}
	var parked []string
	for _, m := range dl {
		id := m.Header.Get("Chaos-Id")
		reason := m.Header.Get("wps-bridge-error")
		if reason == "" {
			t.Errorf("dead letter %s has no wps-bridge-error", id)
		}
		reasons[id] = reason
		parked = append(parked, id)
	}
	missing := 0
	for id, why := range invalid {
		if _, ok := reasons[id]; !ok {
			missing++
			if missing <= 5 {
				t.Errorf("invalid mutant %s (%s) was not dead-lettered", id, why)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d invalid mutants not dead-lettered", missing, len(invalid))
	}
	for _, id := range parked {
		if strings.HasPrefix(id, "good-") {
			t.Errorf("good command %s was dead-lettered: %s", id, reasons[id])
		}
	}

	// Good traffic: complete, and in source order within each group.
	if m, sample := s.missing(goodIDs); m > 0 {
		t.Errorf("%d good commands lost, e.g. %v", m, sample)
	}
	for g := 1000; g < 1000+goodGroups; g++ {
		seqs := s.seqs(g)
		for i := 1; i < len(seqs); i++ {
			if seqs[i] <= seqs[i-1] {
				t.Errorf("group g%d out of order at position %d: %v", g, i, seqs[max(0, i-3):min(len(seqs), i+3)])
				break
			}
		}
	}
	if b.exited() {
		t.Fatalf("bridge exited: %v\n%s", b.waitErr, b.logTail())
	}
	if code, body := b.readyz(); code != 200 {
		t.Errorf("/readyz = %d %s", code, body)
	}
	elapsed := time.Since(start)
	if err := b.stop(30 * time.Second); err != nil {
		t.Errorf("bridge stop: %v", err)
	}
	figure(t, "hostile: mutants=%d rejected-by-codec=%d dead-lettered=%d (all with a reason) still-valid=%d good=%d good-lost=0 good-in-order=yes panics=0 duration=%v",
		hostile, len(invalid), len(dl), validMutants, good, elapsed.Round(100*time.Millisecond))
}

// TestOversizeAndDeepJSON sends messages over the service's 1 MB limit,
// deeply nested JSON and huge (but legal) JSON into one ordering lane, each
// followed by a small command on the same lane: oversize and broken ones are
// dead-lettered, the lane never stalls (the follower arrives within seconds)
// and the bridge's memory stays bounded.
func TestOversizeAndDeepJSON(t *testing.T) {
	s := newSink(t)
	ns := startNATS(t, nil) // MaxPayload 8 MB, so that oversize messages reach the bridge
	_, js := connectJS(t, ns.url())
	createStream(t, js, cmdStream, "chaos.>")
	b := startBridge(t, "bridge", bridgeYAML(jsSourceYAML("js", ns.url(), cmdStream, cmdSubject, "bridge", ""),
		jsDLQYAML(dlqStream, dlqSubject), freeAddr(t), ""), map[string]string{envConn: s.connString})
	b.waitReady(t, 30*time.Second)

	big := func(n int) string { return strings.Repeat("x", n) }
	deep := strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)
	var huge strings.Builder
	huge.WriteString("[")
	for i := range 30_000 {
		if i > 0 {
			huge.WriteString(",")
		}
		fmt.Fprintf(&huge, `{"i":%d,"v":"abcdefgh"}`, i)
	}
	huge.WriteString("]")
	cases := []struct {
		name       string
		body       string
		deadLetter bool
	}{
		{"1.5 MB envelope", `{"actionName":"sendToGroup","group":"g2000","data":"` + big(1_500_000) + `"}`, true},
		{"4 MB envelope", `{"actionName":"sendToGroup","group":"g2000","data":"` + big(4_000_000) + `"}`, true},
		{"1 MB + 1 byte", `{"actionName":"sendToGroup","group":"g2000","data":"` + big(1<<20) + `"}`, true},
		{"100,000 levels of nesting", `{"actionName":"sendToGroup","group":"g2000","data":` + deep + `}`, true},
		{"100,000 unclosed brackets", `{"actionName":"sendToGroup","group":"g2000","data":` + strings.Repeat("[", 100_000), true},
		{"800 KB of legal JSON", `{"actionName":"sendToGroup","group":"g2000","data":` + huge.String() + `}`, false},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wantParked := map[string]bool{}
	seq := 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := nats.NewMsg(cmdSubject)
			m.Header.Set("Chaos-Id", "big-"+sanitize(c.name))
			m.Data = []byte(c.body)
			follower := payload{ID: "after-" + sanitize(c.name), G: 2000, Seq: seq}
			seq++
			start := time.Now()
			if err := jsPublish(ctx, js, []*nats.Msg{m, envelopeMsg(cmdSubject, follower)}); err != nil {
				t.Fatal(err)
			}
			before := s.distinct()
			s.waitDistinct(t, before+1, 15*time.Second)
			if n, _ := s.missing([]string{follower.ID}); n > 0 {
				t.Fatalf("the follower did not arrive")
			}
			t.Logf("%d bytes: follower delivered %v after publishing", len(c.body), time.Since(start).Round(time.Millisecond))
			if c.deadLetter {
				wantParked["big-"+sanitize(c.name)] = true
			}
		})
	}
	testkit.Eventually(t, 30*time.Second, "oversize and broken messages dead-lettered", func() (bool, string) {
		n := len(streamMsgs(t, js, dlqStream))
		return n >= len(wantParked), fmt.Sprintf("%d of %d", n, len(wantParked))
	})
	for _, m := range streamMsgs(t, js, dlqStream) {
		if id := m.Header.Get("Chaos-Id"); !wantParked[id] {
			t.Errorf("%s was dead-lettered (%s), want it delivered", id, m.Header.Get("wps-bridge-error"))
		}
		if m.Header.Get("wps-bridge-error") == "" || m.Header.Get("wps-bridge-error-class") != "invalid" {
			t.Errorf("%s: error %q class %q", m.Header.Get("Chaos-Id"), m.Header.Get("wps-bridge-error"), m.Header.Get("wps-bridge-error-class"))
		}
		t.Logf("parked %s (%d bytes): %s", m.Header.Get("Chaos-Id"), len(m.Data), truncate(m.Header.Get("wps-bridge-error"), 120))
	}
	rss, err := b.peakRSS()
	if err != nil {
		t.Fatalf("peak RSS: %v", err)
	}
	if rss > 400<<20 {
		t.Errorf("bridge peak RSS %d MB after oversize input, want < 400 MB", rss>>20)
	}
	if err := b.stop(30 * time.Second); err != nil {
		t.Errorf("bridge stop: %v", err)
	}
	figure(t, "oversize: %d oversize/broken messages dead-lettered, lane never stalled, peak RSS %d MB", len(wantParked), rss>>20)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
