// Package gctune owns the pacing of the Go garbage collector in the bridge
// process.
//
// The bridge keeps little live data (a few MB: the messages in flight and
// the brokers' fetch buffers) and allocates a few KB per message. With the
// default GOGC=100 the collector then runs whenever the heap has grown by
// the live size, several times a second under load, and its fixed cost per
// cycle (stacks, sweeping, the write barrier while it marks) becomes a
// noticeable share of the CPU. [Start] sets a floor instead: after every
// cycle GOGC is raised so that the heap may grow by at least the floor
// before the next one, and left at its base value once the live heap is
// large enough for the base to give that room anyway. The memory cost is
// bounded by the floor.
package gctune
