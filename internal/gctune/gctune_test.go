package gctune

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		floor, live uint64
		base, want  int
	}{
		{32 * mib, 8 * mib, 100, 400},   // the floor asks for 400 %
		{32 * mib, 16 * mib, 100, 200},  // twice the live heap
		{32 * mib, 64 * mib, 100, 100},  // base gives more room than the floor
		{32 * mib, 1 * mib, 100, 400},   // capped: at most 5× the live heap
		{32 * mib, 0, 100, 400},         // nothing live yet
		{32 * mib, 64 * mib, 150, 150},  // never below the base
		{32 * mib, 1 * mib, 800, 800},   // a base above the cap stays
		{32 * mib, 20 * mib, 100, 160},  // 100·32/20
		{32 * mib, 33 * mib, 100, 100},  // 96 % < base
		{32 * mib, 10 * mib, 300, 320},  // 320 > base 300
		{32 * mib, 10 * mib, 400, 400},  // = base
		{32 * mib, 12 * mib, 50, 266},   // integer percent
		{32 * mib, 400 * mib, 100, 100}, // a big heap: plain GOGC
	} {
		if got := percentFor(tc.floor, tc.live, tc.base); got != tc.want {
			t.Errorf("percentFor(%d MiB, %d MiB, %d) = %d, want %d", tc.floor/mib, tc.live/mib, tc.base, got, tc.want)
		}
	}
}

// gogc reads the GOGC in force.
func gogc() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// collectUntil runs collections (the tuner's signal) until cond holds.
func collectUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s of collections: %s", what)
		}
		runtime.GC()
		runtime.Gosched()
	}
}

// The tests below change process-wide state: they do not run in parallel.

func TestStartRaisesGOGCForASmallHeapAndStopRestores(t *testing.T) {
	t.Setenv("GOGC", "")
	base := gogc()
	stop, tuning := Start(1 << 30) // far above this test's live heap
	if !tuning {
		t.Fatal("Start reports no tuning")
	}
	collectUntil(t, "GOGC was not raised", func() bool { return gogc() == max(base, maxPercent) })
	stop()
	if got := gogc(); got != base {
		t.Fatalf("GOGC after stop = %d, want the base %d", got, base)
	}
	stop() // idempotent
	runtime.GC()
	if got := gogc(); got != base {
		t.Fatalf("GOGC after a collection following stop = %d, want %d", got, base)
	}
}

func TestStartsNest(t *testing.T) {
	t.Setenv("GOGC", "")
	base := gogc()
	stop1, _ := Start(1 << 30)
	stop2, _ := Start(1 << 30)
	collectUntil(t, "GOGC was not raised", func() bool { return gogc() == max(base, maxPercent) })
	stop1()
	runtime.GC()
	collectUntil(t, "tuning ended with one Start left", func() bool { return gogc() == max(base, maxPercent) })
	stop2()
	if got := gogc(); got != base {
		t.Fatalf("GOGC after the last stop = %d, want %d", got, base)
	}
}

func TestStartLeavesGOGCAlone(t *testing.T) {
	for _, tc := range []struct {
		name, env  string
		floor      uint64
		wantTuning bool
	}{
		{"floor 0", "", 0, false},
		{"floor below the base's room", "", 1, true},
		{"GOGC set by the operator", "100", 1 << 30, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOGC", tc.env)
			base := gogc()
			stop, tuning := Start(tc.floor)
			defer stop()
			if tuning != tc.wantTuning {
				t.Errorf("Start reports tuning %v, want %v", tuning, tc.wantTuning)
			}
			for range 3 {
				runtime.GC()
			}
			if got := gogc(); got != base {
				t.Fatalf("GOGC = %d, want it left at %d", got, base)
			}
		})
	}
}
