package wps

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// BenchmarkSign measures the REST token work per request: signing a new
// HS256 JWT (a cache miss, or the cache turned off) and a cache hit, over
// 1,000 distinct request URLs (one per group, as in the bridge benchmark).
func BenchmarkSign(b *testing.B) {
	auds := make([]string, 1000)
	for i := range auds {
		auds[i] = "https://bench.webpubsub.azure.com/api/hubs/chat/groups/g" + strconv.Itoa(i) + "/:send?api-version=2024-12-01"
	}
	now := func() time.Time { return time.Unix(1_700_000_000, 0) }
	ctx := context.Background()
	b.Run("sign", func(b *testing.B) {
		s := newKeySigner(testKey, time.Hour, false, now)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := s.authorization(ctx, auds[i%len(auds)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("cached", func(b *testing.B) {
		s := newKeySigner(testKey, time.Hour, true, now)
		for _, aud := range auds {
			if _, err := s.authorization(ctx, aud); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := s.authorization(ctx, auds[i%len(auds)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
		if n := s.signs.Load(); n != int64(len(auds)) {
			b.Fatalf("signed %d tokens, want %d (one per URL)", n, len(auds))
		}
	})
}
