package emulator

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// Subprotocols the client endpoint speaks; anything else is a simple WebSocket client.
const (
	subprotocolJSON     = "json.webpubsub.azure.v1"
	subprotocolReliable = "json.reliable.webpubsub.azure.v1"
)

const (
	closeNormal     = websocket.StatusNormalClosure
	closeGoingAway  = websocket.StatusGoingAway
	closePolicy     = websocket.StatusPolicyViolation
	closeTryAgain   = websocket.StatusTryAgainLater
	closeGrace      = 5 * time.Second // how long a killed connection's pending write may block
	maxCloseReason  = 123             // bytes a close frame can carry as reason
	maxClientFrame  = 1 << 20         // 1 MB, the service's client message limit
	maxRememberAcks = 4096            // ack ids remembered per reliable connection for Duplicate detection
)

type protocol uint8

const (
	protoSimple protocol = iota
	protoJSON
	protoReliable
)

func (p protocol) String() string {
	switch p {
	case protoJSON:
		return subprotocolJSON
	case protoReliable:
		return subprotocolReliable
	default:
		return "simple"
	}
}

// conn is one client WebSocket connection.
type conn struct {
	e           *Emulator
	h           *hub
	id          string
	userID      string
	proto       protocol
	roles       []string
	connectedAt time.Time

	queue chan outFrame
	done  chan struct{} // closed by kill: the writer closes the socket with closeCode/closeReason

	killOnce    sync.Once
	closeCode   websocket.StatusCode
	closeReason string

	sockMu            sync.Mutex
	sock              *socket     // the live socket; nil while the connection waits for recovery
	recovering        bool        // the socket dropped; a reconnect with reconnectionToken may resume
	reconnectionToken string      // reliable protocol only
	recoverTimer      *time.Timer // ends the recovery window
	killTimer         *time.Timer // drops a socket whose close handshake is stuck

	unackedMu sync.Mutex
	unacked   []sentFrame // reliable: messages sent but not yet acknowledged, by sequenceId

	// guarded by h.mu
	attached bool
	groups   map[string]struct{}
	grants   map[string]map[string]struct{} // permission -> group ("" = every group)
	patterns map[string][]string            // permission -> group patterns from webpubsub.<perm>s.<pattern> roles

	seq       uint64 // last sequenceId sent; writer only
	delivered atomic.Uint64

	ackIDsMu sync.Mutex
	ackIDs   map[uint64]struct{} // reliable: ackIds seen, for Duplicate answers across recoveries
}

// seenAckID records id and reports whether it was seen before.
func (c *conn) seenAckID(id uint64) bool {
	c.ackIDsMu.Lock()
	defer c.ackIDsMu.Unlock()
	if _, dup := c.ackIDs[id]; dup {
		return true
	}
	if c.ackIDs == nil || len(c.ackIDs) >= maxRememberAcks {
		c.ackIDs = make(map[uint64]struct{})
	}
	c.ackIDs[id] = struct{}{}
	return false
}

// socket is one WebSocket a connection is attached to; a recovered reliable connection gets a new one.
type socket struct {
	ws       *websocket.Conn
	batch    *batchConn    // the network connection under ws; nil when it could not be wrapped
	gone     chan struct{} // closed when the read side ended: the writer stops
	ended    chan struct{} // closed when the connection was suspended or closed after this socket ended
	batching bool          // a batch is open; writer only
}

// sentFrame is a reliable-protocol message kept until the client acknowledges its sequenceId.
type sentFrame struct {
	seq  uint64
	data []byte
}

// outFrame is one item of a connection's send queue.
type outFrame struct {
	d      *delivery // a message, rendered per protocol
	ctl    []byte    // a control frame (system, ack, pong), JSON protocols only
	close  bool      // graceful close: send "disconnected" (JSON protocols) then close with code/reason
	code   websocket.StatusCode
	reason string
}

// delivery is one message, pre-rendered once for all recipients.
type delivery struct {
	simpleType websocket.MessageType
	simple     []byte // the payload as a simple client receives it
	jsonPrefix []byte // the JSON-protocol frame without its closing brace
	jsonFull   []byte // jsonPrefix + "}"
}

// newDelivery renders a message. from is "server" or "group"; dataType is json, text or binary and payload holds
// the raw JSON text, the UTF-8 text or the bytes respectively.
func newDelivery(from, group, fromUserID, dataType string, payload []byte) *delivery {
	d := &delivery{simple: payload, simpleType: websocket.MessageText}
	if dataType == "binary" {
		d.simpleType = websocket.MessageBinary
	}
	b := make([]byte, 0, len(payload)+96+len(group))
	b = append(b, `{"type":"message","from":"`...)
	b = append(b, from...)
	b = append(b, '"')
	if from == "group" {
		b = append(b, `,"group":`...)
		b = appendJSONString(b, group)
		if fromUserID != "" {
			b = append(b, `,"fromUserId":`...)
			b = appendJSONString(b, fromUserID)
		}
	}
	b = append(b, `,"dataType":"`...)
	b = append(b, dataType...)
	b = append(b, `","data":`...)
	switch dataType {
	case "json":
		b = append(b, payload...)
	case "text":
		b = appendJSONString(b, string(payload))
	default:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, payload)
		b = append(b, '"')
	}
	d.jsonPrefix = b
	d.jsonFull = append(b[:len(b):len(b)], '}')
	return d
}

func appendJSONString(b []byte, s string) []byte {
	if isPlainASCII(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	enc, _ := json.Marshal(s) // a string always marshals
	return append(b, enc...)
}

func isPlainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

func newConn(e *Emulator, h *hub, id, userID string, proto protocol, roles []string, s *socket) *conn {
	c := &conn{
		e: e, h: h, id: id, userID: userID, proto: proto, roles: roles, sock: s,
		connectedAt: time.Now(),
		queue:       make(chan outFrame, e.queueLimit),
		done:        make(chan struct{}),
		groups:      make(map[string]struct{}),
		grants:      make(map[string]map[string]struct{}),
		patterns:    make(map[string][]string),
	}
	for _, r := range roles {
		c.addRole(r)
	}
	if proto == protoReliable {
		c.reconnectionToken = randomID(24)
	}
	return c
}

// addRole turns a token role into grants: webpubsub.<perm>, webpubsub.<perm>.<group>, webpubsub.<perm>s.<pattern>.
func (c *conn) addRole(role string) {
	rest, ok := strings.CutPrefix(role, "webpubsub.")
	if !ok {
		return
	}
	for _, p := range []string{permJoinLeaveGroup, permSendToGroup} {
		switch {
		case rest == p:
			c.grant(p, "")
		case strings.HasPrefix(rest, p+"s."):
			c.patterns[p] = append(c.patterns[p], rest[len(p)+2:])
		case strings.HasPrefix(rest, p+"."):
			c.grant(p, rest[len(p)+1:])
		}
	}
}

func (c *conn) grant(p, target string) {
	set := c.grants[p]
	if set == nil {
		set = make(map[string]struct{})
		c.grants[p] = set
	}
	set[target] = struct{}{}
}

// enqueue queues f without blocking. A full queue disconnects the connection (close 1013) and reports false.
func (c *conn) enqueue(f outFrame) bool {
	select {
	case <-c.done:
		return false
	default:
	}
	select {
	case c.queue <- f:
		return true
	default:
		c.e.stats.slow.Add(1)
		c.e.log.Warn("client send queue full, disconnecting", "hub", c.h.name, "connectionId", c.id, "limit", cap(c.queue))
		c.kill(closeTryAgain, "send queue full")
		return false
	}
}

// closeGracefully removes the connection from the hub at once and queues the close behind pending messages.
// The close code is 1008, so @azure/web-pubsub-client does not try to recover a connection the server closed.
// A connection waiting for recovery has no writer to send the close, so it ends at once.
func (c *conn) closeGracefully(reason string) {
	c.h.detach(c)
	if c.suspended() || !c.enqueue(outFrame{close: true, code: closePolicy, reason: reason}) {
		c.kill(closePolicy, reason)
	}
}

// suspended reports whether the connection has no socket because it waits for its client to recover it.
func (c *conn) suspended() bool {
	c.sockMu.Lock()
	defer c.sockMu.Unlock()
	return c.recovering
}

// kill removes the connection from the hub and makes the writer close the socket with code and reason, without
// flushing the queue. If a write is stuck on a slow peer, the socket is dropped after closeGrace. A connection
// waiting for recovery simply ends.
func (c *conn) kill(code websocket.StatusCode, reason string) {
	c.killOnce.Do(func() {
		c.closeCode, c.closeReason = code, truncateReason(reason)
		c.h.detach(c)
		c.sockMu.Lock()
		if c.recoverTimer != nil {
			c.recoverTimer.Stop()
		}
		if s := c.sock; s != nil {
			c.killTimer = time.AfterFunc(closeGrace, func() { _ = s.ws.CloseNow() })
		}
		close(c.done) // under sockMu, so suspend sees either a live connection or a killed one
		c.sockMu.Unlock()
	})
}

func (c *conn) killed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stopKillTimer releases the stuck-socket timer once the socket's goroutines are gone.
func (c *conn) stopKillTimer() {
	c.sockMu.Lock()
	defer c.sockMu.Unlock()
	if c.killTimer != nil {
		c.killTimer.Stop()
	}
}

// suspend keeps a reliable connection whose socket dropped for the recovery window. It reports false when the
// connection is already closed.
func (c *conn) suspend(window time.Duration) bool {
	c.sockMu.Lock()
	defer c.sockMu.Unlock()
	if c.killed() {
		return false
	}
	c.sock = nil
	c.recovering = true
	c.recoverTimer = time.AfterFunc(window, func() { c.kill(closePolicy, "connection recovery window expired") })
	return true
}

// resume attaches a new socket to a suspended connection when token matches; it returns the frames to send
// first: a new connected message and every unacknowledged message. When the old socket is still attached (the
// client noticed the drop before the emulator did), it is dropped and resume waits for the suspension.
func (c *conn) resume(token string, s *socket) ([][]byte, bool) {
	c.sockMu.Lock()
	if old := c.sock; old != nil && token != "" && token == c.reconnectionToken && !c.killed() {
		c.sockMu.Unlock()
		_ = old.ws.CloseNow()
		t := time.NewTimer(closeGrace)
		select {
		case <-old.ended:
		case <-t.C:
		}
		t.Stop()
		c.sockMu.Lock()
	}
	defer c.sockMu.Unlock()
	if !c.recovering || c.killed() || token == "" || token != c.reconnectionToken {
		return nil, false
	}
	c.recoverTimer.Stop()
	c.recovering = false
	c.sock = s
	c.reconnectionToken = randomID(24)
	first := [][]byte{connectedMessage(c.id, c.userID, c.reconnectionToken)}
	c.unackedMu.Lock()
	for _, f := range c.unacked {
		first = append(first, f.data)
	}
	c.unackedMu.Unlock()
	return first, true
}

// acknowledge drops the unacknowledged messages up to seq.
func (c *conn) acknowledge(seq uint64) {
	c.unackedMu.Lock()
	defer c.unackedMu.Unlock()
	i := 0
	for i < len(c.unacked) && c.unacked[i].seq <= seq {
		i++
	}
	if i == 0 {
		return
	}
	rest := c.unacked[i:]
	if cap(rest) > 2*len(rest)+64 {
		rest = append([]sentFrame(nil), rest...)
	}
	c.unacked = rest
}

func truncateReason(s string) string {
	if len(s) <= maxCloseReason {
		return s
	}
	s = s[:maxCloseReason]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// writeLoop is the only writer of socket s: it sends first, then the queue, until the connection is killed
// (it closes the socket with the kill's code) or the read side of s ends.
func (c *conn) writeLoop(s *socket, first [][]byte) {
	for _, b := range first {
		if err := s.ws.Write(context.Background(), websocket.MessageText, b); err != nil {
			c.writeFailed(s, err)
			return
		}
	}
	for {
		select {
		case <-c.done:
			c.closeSocket(s, c.closeCode, c.closeReason)
			return
		case <-s.gone:
			return
		case f := <-c.queue:
			if !c.writeBatch(s, f) {
				return
			}
		}
	}
}

// maxFramesPerBatch bounds how many queued frames one system call carries.
const maxFramesPerBatch = 64

// writeBatch writes f and, coalesced into the same system call, whatever else is already queued. It reports
// false once the socket is closed.
func (c *conn) writeBatch(s *socket, f outFrame) bool {
	n := min(len(c.queue), maxFramesPerBatch-1)
	if n > 0 && s.batch != nil {
		s.batch.begin()
		s.batching = true
	}
	for i := 0; ; i++ {
		if !c.writeFrame(s, f) {
			return false
		}
		if i >= n {
			break
		}
		f = <-c.queue
	}
	if err := endBatch(s); err != nil {
		c.writeFailed(s, err)
		return false
	}
	return true
}

// endBatch writes out a pending batch.
func endBatch(s *socket) error {
	if !s.batching {
		return nil
	}
	s.batching = false
	return s.batch.end()
}

// writeFailed drops the socket after a write error. The read side then ends too, and the handler decides
// whether the connection ends or (reliable protocol) waits for recovery.
func (c *conn) writeFailed(s *socket, err error) {
	c.e.log.Debug("client write failed", "hub", c.h.name, "connectionId", c.id, "error", err)
	_ = s.ws.CloseNow()
}

// writeFrame writes one queued frame; it reports false once the socket is closed.
func (c *conn) writeFrame(s *socket, f outFrame) bool {
	ctx := context.Background()
	if f.close {
		if c.proto != protoSimple {
			msg := map[string]string{"type": "system", "event": "disconnected", "message": f.reason}
			b, _ := json.Marshal(msg) // a map of strings always marshals
			if err := s.ws.Write(ctx, websocket.MessageText, b); err != nil {
				c.e.log.Debug("client disconnected message", "hub", c.h.name, "connectionId", c.id, "error", err)
			}
		}
		c.kill(f.code, f.reason)
		c.closeSocket(s, c.closeCode, c.closeReason)
		return false
	}
	typ, data := c.render(f)
	if data == nil {
		return true
	}
	if err := s.ws.Write(ctx, typ, data); err != nil {
		c.writeFailed(s, err)
		return false
	}
	if f.d != nil {
		c.delivered.Add(1)
		c.e.stats.delivered.Add(1)
	}
	return true
}

// closeSocket ends any batch and closes the WebSocket with a close handshake.
func (c *conn) closeSocket(s *socket, code websocket.StatusCode, reason string) {
	if err := endBatch(s); err != nil {
		c.e.log.Debug("client flush before close", "hub", c.h.name, "connectionId", c.id, "error", err)
	}
	if err := s.ws.Close(code, reason); err != nil {
		c.e.log.Debug("client close", "hub", c.h.name, "connectionId", c.id, "error", err)
	}
}

// render returns the frame for f in this connection's protocol; nil data means "nothing to send".
func (c *conn) render(f outFrame) (websocket.MessageType, []byte) {
	if f.d == nil {
		if c.proto == protoSimple {
			return 0, nil
		}
		return websocket.MessageText, f.ctl
	}
	switch c.proto {
	case protoSimple:
		return f.d.simpleType, f.d.simple
	case protoJSON:
		return websocket.MessageText, f.d.jsonFull
	}
	c.seq++
	b := make([]byte, 0, len(f.d.jsonPrefix)+32)
	b = append(b, f.d.jsonPrefix...)
	b = append(b, `,"sequenceId":`...)
	b = strconv.AppendUint(b, c.seq, 10)
	b = append(b, '}')
	c.unackedMu.Lock()
	c.unacked = append(c.unacked, sentFrame{seq: c.seq, data: b})
	pending := len(c.unacked)
	c.unackedMu.Unlock()
	if pending > c.e.unackedLimit() {
		c.e.log.Warn("reliable client does not acknowledge, disconnecting", "hub", c.h.name, "connectionId", c.id, "unacked", pending)
		c.kill(closePolicy, "too many unacknowledged messages")
	}
	return websocket.MessageText, b
}
