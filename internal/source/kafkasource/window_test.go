package kafkasource

import "testing"

func TestWindowContiguousWatermark(t *testing.T) {
	t.Parallel()
	type step struct {
		ack      int64
		wantMark int64 // -1: nothing to commit
	}
	tests := []struct {
		name    string
		offsets []int64
		steps   []step
	}{
		{"in order", []int64{0, 1, 2}, []step{{0, 1}, {1, 2}, {2, 3}}},
		{"out of order holds at the gap", []int64{0, 1, 2}, []step{{1, -1}, {2, -1}, {0, 3}}},
		{"middle gap", []int64{10, 11, 12, 13}, []step{{10, 11}, {12, 11}, {13, 11}, {11, 14}}},
		{"offset gaps from compaction", []int64{5, 9, 20}, []step{{9, -1}, {5, 10}, {20, 21}}},
		{"unknown offset is ignored", []int64{0, 1}, []step{{7, -1}, {0, 1}}},
		{"duplicate ack", []int64{0, 1}, []step{{0, 1}, {0, 1}, {1, 2}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWindow("t", 0, 100)
			for _, off := range tc.offsets {
				if !w.add(off) {
					t.Fatalf("add(%d) refused below the limit", off)
				}
			}
			for i, s := range tc.steps {
				w.ack(s.ack)
				mark, ok := w.toCommit()
				if s.wantMark < 0 {
					if ok {
						t.Fatalf("step %d (ack %d): commit %d, want nothing to commit", i, s.ack, mark)
					}
					continue
				}
				if !ok || mark != s.wantMark {
					t.Fatalf("step %d (ack %d): commit %d (ok %v), want %d", i, s.ack, mark, ok, s.wantMark)
				}
			}
		})
	}
}

func TestWindowCommittedAndLimit(t *testing.T) {
	t.Parallel()
	w := newWindow("t", 0, 3)
	for off := int64(0); off < 3; off++ {
		if !w.add(off) {
			t.Fatalf("add(%d) refused", off)
		}
	}
	if w.add(3) {
		t.Fatal("add beyond the limit accepted")
	}
	w.ack(1)
	if w.add(3) {
		t.Fatal("an ack above the gap freed space")
	}
	w.ack(0) // passes 0 and 1
	select {
	case <-w.space:
	default:
		t.Fatal("no space signal after the watermark moved")
	}
	if !w.add(3) || !w.add(4) || w.add(5) {
		t.Fatalf("after passing 2 records the window should take exactly 2 more (pending %d)", w.pending())
	}
	mark, ok := w.toCommit()
	if !ok || mark != 2 {
		t.Fatalf("toCommit = %d, %v; want 2, true", mark, ok)
	}
	w.committedAt(2)
	if _, ok := w.toCommit(); ok {
		t.Fatal("toCommit after committing the watermark still reports work")
	}
}

func TestWindowCompactsLongRuns(t *testing.T) {
	t.Parallel()
	w := newWindow("t", 0, 4)
	for off := int64(0); off < 10000; off++ {
		if !w.add(off) {
			t.Fatalf("add(%d) refused with %d pending", off, w.pending())
		}
		w.ack(off)
	}
	if mark, _ := w.toCommit(); mark != 10000 {
		t.Fatalf("mark %d, want 10000", mark)
	}
	if c := cap(w.entries); c > 64 {
		t.Fatalf("entries grew to capacity %d for a window of 4", c)
	}
}

func TestWindowLag(t *testing.T) {
	t.Parallel()
	w := newWindow("t", 0, 10)
	if got := w.lag(); got != 0 {
		t.Errorf("lag with nothing known = %d, want 0", got)
	}
	w.add(10)
	w.hwm.Store(25)
	if got := w.lag(); got != 15 {
		t.Errorf("lag from the first offset read = %d, want 15", got)
	}
	w.committed = 20
	if got := w.lag(); got != 5 {
		t.Errorf("lag from the committed offset = %d, want 5", got)
	}
	w.committed = 25
	if got := w.lag(); got != 0 {
		t.Errorf("lag when caught up = %d, want 0", got)
	}
}
