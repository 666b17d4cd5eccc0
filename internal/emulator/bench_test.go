package emulator

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// BenchmarkRESTSendToGroup measures REST sendToGroup calls over keep-alive HTTP connections, each delivered to
// four WebSocket clients (two simple, one json, one reliable) that read everything. The sends/s metric counts
// sends whose messages all clients have received.
func BenchmarkRESTSendToGroup(b *testing.B) {
	// A deep queue keeps a reader that the shared CI machine starves for a moment from being disconnected.
	v := newEnv(b, Config{QueueLimit: 1 << 15})
	protos := []string{"", "", subprotocolJSON, subprotocolReliable}
	var received atomic.Int64
	readersDone := make(chan struct{}, len(protos))
	for i, p := range protos {
		c := v.dial("bench", p, "reader"+string(rune('a'+i)), nil, []string{"g"})
		go func() {
			defer func() { readersDone <- struct{}{} }()
			var n int
			for {
				if _, _, err := c.ws.Read(context.Background()); err != nil {
					return
				}
				received.Add(1)
				n++
				// Like @azure/web-pubsub-client, acknowledge at least every few hundred messages.
				if p == subprotocolReliable && n%256 == 0 {
					ack := []byte(`{"type":"sequenceAck","sequenceId":` + strconv.Itoa(n) + `}`)
					if err := c.ws.Write(context.Background(), websocket.MessageText, ack); err != nil {
						return
					}
				}
			}
		}()
	}
	b.Cleanup(func() {
		_ = v.e.Close()
		for range protos {
			<-readersDone
		}
	})

	u := v.srv.URL + "/api/hubs/bench/groups/g/:send" + apiV
	token := "Bearer " + v.restToken(u)
	tr := &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	body := []byte(`{"event":"tick","value":12345,"text":"a small json payload"}`)

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var failed atomic.Int64
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
			if err != nil {
				failed.Add(1)
				continue
			}
			req.Header.Set("Authorization", token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				failed.Add(1)
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				failed.Add(1)
			}
		}
	})
	want := int64(b.N) * int64(len(protos))
	deadline := time.Now().Add(30 * time.Second)
	for received.Load() < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // readers only count; polling the counter is the cheapest signal
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d sends failed", n)
	}
	if got := received.Load(); got < want {
		b.Fatalf("clients received %d of %d messages (slow-client disconnects: %d)", got, want, v.e.Stats().SlowClientsDisconnected)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "sends/s")
	b.ReportMetric(float64(want)/elapsed.Seconds(), "deliveries/s")
}
