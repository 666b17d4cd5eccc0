package router

import (
	"strconv"
	"strings"
	"time"

	"github.com/wps-bridge/bridge/internal/source"
)

// Dead-letter headers (design.md §3). The router replaces any of them that the
// original message already carried (a replayed dead letter that failed again).
const (
	HeaderError      = "wps-bridge-error"
	HeaderErrorClass = "wps-bridge-error-class"
	HeaderStatus     = "wps-bridge-status"
	HeaderAttempts   = "wps-bridge-attempts"
	HeaderSource     = "wps-bridge-source"
	HeaderOrigin     = "wps-bridge-origin"
	HeaderFailedAt   = "wps-bridge-failed-at"
	HeaderCommandID  = "wps-bridge-command-id"
	HeaderAction     = "wps-bridge-action"

	headerPrefix = "wps-bridge-"
)

// deadLetterMessage is the original body and headers plus the wps-bridge-*
// headers describing f. The error text comes from wps and codec errors,
// which never carry secrets.
func (r *Router) deadLetterMessage(t *tracked, f *failure) *source.Message {
	orig := t.msg
	hdr := make(source.Headers, 0, len(orig.Headers)+8)
	for _, h := range orig.Headers {
		if len(h.Key) >= len(headerPrefix) && strings.EqualFold(h.Key[:len(headerPrefix)], headerPrefix) {
			continue
		}
		hdr = append(hdr, h)
	}
	status := ""
	if f.status != 0 {
		status = strconv.Itoa(f.status)
	}
	hdr = append(hdr,
		source.Header{Key: HeaderError, Value: f.err.Error()},
		source.Header{Key: HeaderErrorClass, Value: f.class.String()},
		source.Header{Key: HeaderStatus, Value: status},
		source.Header{Key: HeaderAttempts, Value: strconv.Itoa(f.attempts)},
		source.Header{Key: HeaderSource, Value: t.input},
		source.Header{Key: HeaderOrigin, Value: origin(orig)},
		source.Header{Key: HeaderFailedAt, Value: r.cfg.Now().UTC().Format(time.RFC3339)},
	)
	if f.cmdID != "" {
		hdr = append(hdr, source.Header{Key: HeaderCommandID, Value: f.cmdID})
	}
	if f.action != "" {
		hdr = append(hdr, source.Header{Key: HeaderAction, Value: f.action})
	}
	return &source.Message{
		Source:  t.input,
		Body:    orig.Body,
		Headers: hdr,
		Key:     orig.Key,
	}
}

// origin names where a message came from: "subject=…" for NATS, or
// "topic=… partition=… offset=…" for Kafka.
func origin(m *source.Message) string {
	if m.Topic != "" {
		return "topic=" + m.Topic + " partition=" + strconv.FormatInt(int64(m.Partition), 10) +
			" offset=" + strconv.FormatInt(m.Offset, 10)
	}
	return "subject=" + m.Subject
}
