package kafkasource

import (
	"sort"
	"sync"
	"sync/atomic"
)

// window tracks one partition's delivered records in offset order and the
// commit watermark: the offset after the longest gap-free run of acked
// records from the oldest one. Kafka offsets need not be consecutive
// (compaction, transaction markers), so "gap-free" is over delivered records,
// not over integers. Safe for concurrent use.
type window struct {
	topic     string
	partition int32
	limit     int // most records tracked at once; add refuses beyond it

	mu        sync.Mutex
	entries   []windowEntry // entries[head:] are delivered and not yet passed by mark
	head      int
	mark      int64 // next offset to commit; -1 until the first record is passed
	committed int64 // last mark committed; -1 if none

	// space gets a token whenever the window shrinks, waking an add that
	// found it full.
	space chan struct{}

	// start is the first offset added (-1 before); hwm is the high
	// watermark of the last fetch.
	start int64
	hwm   atomic.Int64

	// ended is set when the partition is revoked or lost: its records are
	// no longer handed out and its watermark no longer committed.
	ended atomic.Bool
}

type windowEntry struct {
	offset int64
	acked  bool
}

func newWindow(topic string, partition int32, limit int) *window {
	return &window{
		topic:     topic,
		partition: partition,
		limit:     limit,
		mark:      -1,
		committed: -1,
		start:     -1,
		space:     make(chan struct{}, 1),
	}
}

// add records a delivered offset, which must be above every offset added
// before. It returns false, recording nothing, when the window holds limit
// records already (wait on space and retry).
func (w *window) add(offset int64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.entries)-w.head >= w.limit {
		return false
	}
	if w.head > 0 && w.head >= len(w.entries)/2 {
		// Compact: reuse the passed prefix so the slice stays bounded.
		n := copy(w.entries, w.entries[w.head:])
		w.entries = w.entries[:n]
		w.head = 0
	}
	if w.start < 0 {
		w.start = offset
	}
	w.entries = append(w.entries, windowEntry{offset: offset})
	return true
}

// end marks the window ended and wakes an add waiting for space.
func (w *window) end() {
	w.ended.Store(true)
	w.signalSpace()
}

// signalSpace wakes an add waiting for space (the token stays if none waits).
func (w *window) signalSpace() {
	select {
	case w.space <- struct{}{}:
	default:
	}
}

// ack marks offset as finished and advances the watermark over the gap-free
// acked prefix. Acking an offset the window does not hold is a no-op.
func (w *window) ack(offset int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	pending := w.entries[w.head:]
	i := sort.Search(len(pending), func(i int) bool { return pending[i].offset >= offset })
	if i == len(pending) || pending[i].offset != offset {
		return
	}
	pending[i].acked = true
	if !pending[0].acked {
		return // the oldest is still out: the watermark stays
	}
	for w.head < len(w.entries) && w.entries[w.head].acked {
		w.mark = w.entries[w.head].offset + 1
		w.head++
	}
	w.signalSpace()
}

// toCommit returns the watermark when it is ahead of the last commit.
func (w *window) toCommit() (int64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mark, w.mark > w.committed
}

// committedAt records that offset was committed.
func (w *window) committedAt(offset int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if offset > w.committed {
		w.committed = offset
	}
}

// pending returns the number of tracked records not yet passed.
func (w *window) pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.entries) - w.head
}

// lag is the records between the committed position (or the first offset
// read before the first commit) and the last seen high watermark; 0 when
// unknown.
func (w *window) lag() int64 {
	w.mu.Lock()
	base := w.committed
	if base < 0 {
		base = w.start
	}
	w.mu.Unlock()
	hwm := w.hwm.Load()
	if base < 0 || hwm <= base {
		return 0
	}
	return hwm - base
}
