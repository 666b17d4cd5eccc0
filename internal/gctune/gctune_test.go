package gctune

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wps-bridge/bridge/tests/testkit"
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

// waitGOGC runs collections (the tuner adjusts after each) until GOGC is
// want.
func waitGOGC(t *testing.T, want int, what string) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, what, func() (bool, string) {
		runtime.GC()
		got := GOGC()
		return got == want, fmt.Sprintf("GOGC %d, want %d", got, want)
	})
}

// The tests below change process-wide state: they do not run in parallel.

func TestStartRaisesGOGCForASmallHeapAndStopRestores(t *testing.T) {
	t.Setenv("GOGC", "")
	base := GOGC()
	stop, tuning := Start(1 << 30) // far above this test's live heap
	if !tuning {
		t.Fatal("Start reports no tuning")
	}
	waitGOGC(t, max(base, maxPercent), "GOGC raised")
	stop()
	if got := GOGC(); got != base {
		t.Fatalf("GOGC after stop = %d, want the base %d", got, base)
	}
	stop() // idempotent
	runtime.GC()
	if got := GOGC(); got != base {
		t.Fatalf("GOGC after a collection following stop = %d, want %d", got, base)
	}
}

func TestStartsNest(t *testing.T) {
	t.Setenv("GOGC", "")
	base := GOGC()
	stop1, _ := Start(1 << 30)
	stop2, _ := Start(1 << 30)
	waitGOGC(t, max(base, maxPercent), "GOGC raised")
	stop1()
	runtime.GC()
	waitGOGC(t, max(base, maxPercent), "GOGC still raised with one Start left")
	stop2()
	if got := GOGC(); got != base {
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
			base := GOGC()
			stop, tuning := Start(tc.floor)
			defer stop()
			if tuning != tc.wantTuning {
				t.Errorf("Start reports tuning %v, want %v", tuning, tc.wantTuning)
			}
			for range 3 {
				runtime.GC()
			}
			if got := GOGC(); got != base {
				t.Fatalf("GOGC = %d, want it left at %d", got, base)
			}
		})
	}
}
