package config

import (
	"slices"
	"strings"
	"time"
)

// Defaults, documented on the fields they apply to.
const (
	DefaultTimeout          = 10 * time.Second
	DefaultMaxInFlight      = 64
	DefaultFetchBatch       = 256
	DefaultMaxAckPending    = 2048
	DefaultAckWait          = 30 * time.Second
	DefaultStartOffset      = "first"
	DefaultSessionTimeout   = 10 * time.Second
	DefaultCoalesceCount    = 100
	DefaultCoalesceBytes    = 1 << 20
	DefaultCoalesceLinger   = 5 * time.Millisecond
	DefaultLanes            = 64
	DefaultLaneQueue        = 256
	DefaultMaxPending       = 4096
	DefaultDrainTimeout     = 10 * time.Second
	DefaultMulticastChunk   = 100
	DefaultRetryInitial     = 100 * time.Millisecond
	DefaultRetryMax         = 30 * time.Second
	DefaultRetryMaxElapsed  = 10 * time.Minute
	DefaultSystemicInterval = 5 * time.Second
	DefaultListen           = "127.0.0.1:9464"
	DefaultLogLevel         = "info"
	DefaultLogFormat        = "text"
	DefaultGCHeapFloorMiB   = 32
)

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

func (c *Config) setDefaults() {
	c.WebPubSub.setDefaults()
	for i := range c.Sources {
		c.Sources[i].setDefaults()
	}
	for i := range c.Routes {
		c.Routes[i].setDefaults()
	}
	c.Router.setDefaults()
	c.Retry.setDefaults()
	c.DeadLetter.setDefaults(c.Sources)
	c.HTTP.setDefaults()
	c.Log.setDefaults()
	setDefault(&c.Runtime.GCHeapFloorMiB, DefaultGCHeapFloorMiB)
}

func (w *WebPubSub) setDefaults() {
	setDefault(&w.Timeout, DefaultTimeout)
	setDefault(&w.MaxInFlight, DefaultMaxInFlight)
}

// setDefaults fills in the defaults of the source's type only, so that a
// JetStream-only key set on a kafka source is still reported.
func (s *Source) setDefaults() {
	switch s.Type {
	case BrokerJetStream:
		setDefault(&s.FetchBatch, DefaultFetchBatch)
		setDefault(&s.MaxAckPending, DefaultMaxAckPending)
		setDefault(&s.AckWait, DefaultAckWait)
	case BrokerKafka:
		setDefault(&s.StartOffset, DefaultStartOffset)
		setDefault(&s.SessionTimeout, DefaultSessionTimeout)
	}
	s.Brokers = SplitList(s.Brokers)
}

// SplitList splits comma-separated entries, so that one ${KAFKA_BROKERS}
// holding "k1:9092,k2:9092" fills a list; blanks around commas are dropped.
func SplitList(list []string) []string {
	if !slices.ContainsFunc(list, func(s string) bool { return strings.Contains(s, ",") }) {
		return list
	}
	out := make([]string, 0, len(list)+1)
	for _, entry := range list {
		for part := range strings.SplitSeq(entry, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

func (r *Route) setDefaults() {
	if r.Action != "" {
		setDefault(&r.Body, BodyRaw)
	} else {
		setDefault(&r.Body, BodyEnvelope)
	}
	if r.Coalesce != nil {
		r.Coalesce.setDefaults()
	}
}

func (c *Coalesce) setDefaults() {
	setDefault(&c.Count, DefaultCoalesceCount)
	setDefault(&c.Bytes, DefaultCoalesceBytes)
	setDefault(&c.Linger, DefaultCoalesceLinger)
}

func (r *Router) setDefaults() {
	setDefault(&r.Lanes, DefaultLanes)
	setDefault(&r.LaneQueue, DefaultLaneQueue)
	setDefault(&r.MaxPending, DefaultMaxPending)
	setDefault(&r.DrainTimeout, DefaultDrainTimeout)
	setDefault(&r.MulticastChunk, DefaultMulticastChunk)
}

func (r *Retry) setDefaults() {
	setDefault(&r.Initial, DefaultRetryInitial)
	setDefault(&r.Max, DefaultRetryMax)
	setDefault(&r.MaxElapsed, DefaultRetryMaxElapsed)
	setDefault(&r.SystemicInterval, DefaultSystemicInterval)
}

// setDefaults takes the connection of the first source of the same broker
// family when the dead letter names none (see DeadLetter).
func (dl *DeadLetter) setDefaults(sources []Source) {
	setDefault(&dl.Type, BrokerNone)
	dl.Brokers = SplitList(dl.Brokers)
	var from *Source
	for i := range sources {
		if sources[i].Type.natsFamily() && dl.Type.natsFamily() || sources[i].Type == BrokerKafka && dl.Type == BrokerKafka {
			from = &sources[i]
			break
		}
	}
	if from == nil {
		return
	}
	switch {
	case dl.Type.natsFamily() && dl.URL == "":
		dl.URL = from.URL
		if dl.Auth.IsZero() {
			dl.Auth = from.Auth
		}
	case dl.Type == BrokerKafka && len(dl.Brokers) == 0:
		dl.Brokers = slices.Clone(from.Brokers)
		if dl.SASL.IsZero() {
			dl.SASL = from.SASL
		}
	default:
		return
	}
	if !dl.TLS.On() {
		dl.TLS = from.TLS
	}
}

func (h *HTTP) setDefaults() { setDefault(&h.Listen, DefaultListen) }

func (l *Log) setDefaults() {
	setDefault(&l.Level, DefaultLogLevel)
	setDefault(&l.Format, DefaultLogFormat)
}
