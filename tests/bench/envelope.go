package main

import (
	"strconv"
)

// envelopeBuilder builds benchmark envelopes:
//
//	{"actionName":"sendToGroup","group":"g42","data":{"ts":<19 digits>,"seq":7,"pad":"xx…"}}
//
// where data (what the sink receives) is exactly payloadBytes long and ts is
// the publish time in Unix nanoseconds.
type envelopeBuilder struct{}

// build returns a new envelope for group g of groups, sequence seq,
// timestamp ts (Unix nanoseconds); the caller owns it.
func (e *envelopeBuilder) build(g, groups, seq int, ts int64, payloadBytes int) []byte {
	b := make([]byte, 0, payloadBytes+64)
	b = append(b, `{"actionName":"sendToGroup","group":"`...)
	b = append(b, groupName(g, groups)...)
	b = append(b, `","data":`...)
	start := len(b)
	b = append(b, `{"ts":`...)
	b = appendPadded(b, ts, tsDigits)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, `,"pad":"`...)
	fill := payloadBytes - (len(b) - start) - 2 // 2: the closing `"}`
	for range max(fill, 0) {
		b = append(b, 'x')
	}
	b = append(b, `"}}`...)
	return b
}

// appendPadded appends v in decimal, zero-padded to width digits.
func appendPadded(b []byte, v int64, width int) []byte {
	var tmp [20]byte
	s := strconv.AppendInt(tmp[:0], v, 10)
	for range width - len(s) {
		b = append(b, '0')
	}
	return append(b, s...)
}
