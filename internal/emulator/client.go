package emulator

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// handleClient serves GET /client/hubs/{hub} and GET /client?hub=: token check, WebSocket upgrade, then the
// connection's read loop on this goroutine and its writer on another.
func (e *Emulator) handleClient(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	hubName := r.PathValue("hub")
	if hubName == "" {
		hubName = q.Get("hub")
	}
	if err := validateHub(hubName); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	token := q.Get("access_token")
	if token == "" {
		token = bearerToken(r.Header.Get("Authorization"))
	}
	claims, err := e.auth.verify(token, r.Host, "/client/hubs/"+hubName, time.Now())
	if err != nil && r.PathValue("hub") == "" {
		claims, err = e.auth.verify(token, r.Host, "/client", time.Now())
	}
	if err != nil {
		e.stats.rejected401.Add(1)
		e.log.Info("client connection refused", "hub", hubName, "error", err)
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	if !e.enterClient() {
		http.Error(w, "emulator shutting down", http.StatusServiceUnavailable)
		return
	}
	defer e.clientsWG.Done()

	bw := &batchingResponseWriter{ResponseWriter: w}
	ws, err := websocket.Accept(bw, r, &websocket.AcceptOptions{
		Subprotocols:       []string{subprotocolReliable, subprotocolJSON},
		InsecureSkipVerify: true, // a local emulator accepts browser clients from any origin
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		e.log.Debug("websocket upgrade failed", "hub", hubName, "error", err)
		return
	}
	ws.SetReadLimit(maxClientFrame)
	s := &socket{ws: ws, batch: bw.conn, gone: make(chan struct{}), ended: make(chan struct{})}
	if connID := q.Get("awps_connection_id"); connID != "" || q.Has("awps_reconnection_token") {
		e.recover(hubName, connID, q.Get("awps_reconnection_token"), claims.Subject, s)
		return
	}
	proto := protoSimple
	// Accept matches subprotocols case-insensitively and echoes the client's spelling.
	switch sp := ws.Subprotocol(); {
	case strings.EqualFold(sp, subprotocolJSON):
		proto = protoJSON
	case strings.EqualFold(sp, subprotocolReliable):
		proto = protoReliable
	}
	h := e.hub(hubName, true)
	c := newConn(e, h, e.newConnectionID(), claims.Subject, proto, claims.Role, s)
	var first [][]byte
	if proto != protoSimple {
		first = append(first, connectedMessage(c.id, c.userID, c.reconnectionToken))
	}
	h.attach(c, claims.Groups)
	if e.closing.Load() {
		c.kill(closeGoingAway, "emulator shutting down")
	}
	e.log.Debug("client connected", "hub", hubName, "connectionId", c.id, "userId", c.userID, "protocol", proto.String())
	e.serveSocket(c, s, first)
}

// recover resumes a suspended reliable connection on socket s, or closes s with 1008 so the client starts afresh.
func (e *Emulator) recover(hubName, connID, token, userID string, s *socket) {
	var c *conn
	if h := e.hub(hubName, false); h != nil {
		c = h.conn(connID)
	}
	var first [][]byte
	ok := false
	if c != nil && c.userID == userID && c.proto == protoReliable {
		first, ok = c.resume(token, s)
	}
	if !ok {
		if err := s.ws.Close(closePolicy, "connection cannot be recovered; start a new connection"); err != nil {
			e.log.Debug("close unrecoverable socket", "hub", hubName, "error", err)
		}
		close(s.ended)
		return
	}
	e.log.Debug("client connection recovered", "hub", hubName, "connectionId", c.id, "replayed", len(first)-1)
	e.serveSocket(c, s, first)
}

// serveSocket runs socket s of c: a writer goroutine and the read loop on this goroutine. When the socket ends
// without a close frame from the client, a reliable connection is suspended for recovery; otherwise it ends.
func (e *Emulator) serveSocket(c *conn, s *socket, first [][]byte) {
	defer close(s.ended)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop(s, first)
	}()
	peerClosed := c.readLoop(s)
	close(s.gone)
	if !c.killed() {
		_ = s.ws.CloseNow() // the read side is over; make sure a blocked write returns too
	}
	<-writerDone
	if !c.killed() && c.proto == protoReliable && !peerClosed && !e.closing.Load() && c.suspend(e.recoveryWindow) {
		e.log.Debug("client socket dropped; waiting for recovery", "hub", c.h.name, "connectionId", c.id)
		if e.closing.Load() {
			c.kill(closeGoingAway, "emulator shutting down")
		}
		return
	}
	c.kill(closeNormal, "")
	c.stopKillTimer()
	e.log.Debug("client disconnected", "hub", c.h.name, "connectionId", c.id)
}

// enterClient registers a client goroutine unless the emulator is closing.
func (e *Emulator) enterClient() bool {
	e.clientsMu.Lock()
	defer e.clientsMu.Unlock()
	if e.closing.Load() {
		return false
	}
	e.clientsWG.Add(1)
	return true
}

func (e *Emulator) newConnectionID() string {
	return e.idPrefix + "-" + strconv.FormatUint(e.nextID.Add(1), 10) + "-" + randomID(4)
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

// connectedMessage is the "connected" system message; reconnectionToken is "" except for reliable clients.
func connectedMessage(connectionID, userID, reconnectionToken string) []byte {
	m := struct {
		Type              string `json:"type"`
		Event             string `json:"event"`
		UserID            string `json:"userId,omitempty"`
		ConnectionID      string `json:"connectionId"`
		ReconnectionToken string `json:"reconnectionToken,omitempty"`
	}{Type: "system", Event: "connected", UserID: userID, ConnectionID: connectionID, ReconnectionToken: reconnectionToken}
	b, _ := json.Marshal(m) // strings only
	return b
}

// clientMessage is a frame a JSON-protocol client sends.
type clientMessage struct {
	Type       string          `json:"type"`
	Group      string          `json:"group"`
	Event      string          `json:"event"`
	AckID      *uint64         `json:"ackId"`
	NoEcho     bool            `json:"noEcho"`
	DataType   string          `json:"dataType"`
	Data       json.RawMessage `json:"data"`
	SequenceID uint64          `json:"sequenceId"`
}

// readLoop reads frames from s until it fails or closes; it reports whether the client sent a close frame.
func (c *conn) readLoop(s *socket) (peerClosed bool) {
	for {
		_, data, err := s.ws.Read(context.Background())
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return true
			}
			c.e.log.Debug("client read ended", "hub", c.h.name, "connectionId", c.id, "error", err)
			return false
		}
		if c.proto == protoSimple {
			// A simple client cannot publish; its frames would go to an upstream event handler, which the
			// emulator does not have.
			c.e.feed.event(c.h.name, c.id, c.userID, "message", len(data))
			continue
		}
		var m clientMessage
		if err := json.Unmarshal(data, &m); err != nil {
			c.e.log.Debug("ignoring malformed client frame", "hub", c.h.name, "connectionId", c.id, "error", err)
			continue
		}
		if m.AckID != nil && c.proto == protoReliable && c.seenAckID(*m.AckID) {
			c.ack(m.AckID, "Duplicate", "message with the same ackId was already processed")
			continue
		}
		c.handle(&m)
	}
}

func (c *conn) handle(m *clientMessage) {
	switch m.Type {
	case "ping":
		c.enqueue(outFrame{ctl: []byte(`{"type":"pong"}`)})
	case "sequenceAck":
		c.acknowledge(m.SequenceID)
	case "joinGroup", "leaveGroup":
		if err := validateGroup(m.Group); err != nil {
			c.ack(m.AckID, "BadRequest", err.Error())
			return
		}
		if !c.h.allowed(c, permJoinLeaveGroup, m.Group) {
			c.ack(m.AckID, "Forbidden", "the connection has no permission to join or leave group "+strconv.Quote(m.Group))
			return
		}
		if m.Type == "joinGroup" {
			c.h.join(c, m.Group)
		} else {
			c.h.leave(c, m.Group)
		}
		c.ack(m.AckID, "", "")
	case "sendToGroup":
		if err := validateGroup(m.Group); err != nil {
			c.ack(m.AckID, "BadRequest", err.Error())
			return
		}
		if !c.h.allowed(c, permSendToGroup, m.Group) {
			c.ack(m.AckID, "Forbidden", "the connection has no permission to send to group "+strconv.Quote(m.Group))
			return
		}
		dataType, payload, err := decodeClientData(m.DataType, m.Data)
		if err != nil {
			c.ack(m.AckID, "BadRequest", err.Error())
			return
		}
		var excluded []string
		if m.NoEcho {
			excluded = []string{c.id}
		}
		targets := c.h.selectConns(scope{group: m.Group}, excluded, nil)
		d := newDelivery("group", m.Group, c.userID, dataType, payload)
		c.e.fanout(targets, d)
		c.e.feed.delivery(c.h.name, "group "+m.Group, "client "+c.id, dataType, payload, len(targets))
		c.ack(m.AckID, "", "")
	case "event":
		_, payload, err := decodeClientData(m.DataType, m.Data)
		if err != nil {
			c.ack(m.AckID, "BadRequest", err.Error())
			return
		}
		c.e.feed.event(c.h.name, c.id, c.userID, m.Event, len(payload))
		c.ack(m.AckID, "", "")
	default:
		c.e.log.Debug("ignoring client frame of unknown type", "hub", c.h.name, "connectionId", c.id, "type", m.Type)
	}
}

// ack queues an ack for ackID (nothing when the client sent none). errName "" means success.
func (c *conn) ack(ackID *uint64, errName, msg string) {
	if ackID == nil {
		return
	}
	type ackError struct {
		Name    string `json:"name"`
		Message string `json:"message"`
	}
	a := struct {
		Type    string    `json:"type"`
		AckID   uint64    `json:"ackId"`
		Success bool      `json:"success"`
		Error   *ackError `json:"error,omitempty"`
	}{Type: "ack", AckID: *ackID, Success: errName == ""}
	if errName != "" {
		a.Error = &ackError{Name: errName, Message: msg}
	}
	b, _ := json.Marshal(a) // plain fields only
	c.enqueue(outFrame{ctl: b})
}

// decodeClientData turns a client frame's dataType and data into the delivered dataType and raw payload.
func decodeClientData(dataType string, raw json.RawMessage) (string, []byte, error) {
	switch dataType {
	case "", "json":
		if len(raw) == 0 {
			raw = json.RawMessage("null")
		}
		return "json", raw, nil
	case "text":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", nil, fmt.Errorf("text data must be a JSON string: %w", err)
		}
		return "text", []byte(s), nil
	case "binary", "protobuf":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", nil, fmt.Errorf("%s data must be a base64 string: %w", dataType, err)
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return "", nil, fmt.Errorf("%s data is not standard base64: %w", dataType, err)
		}
		return "binary", b, nil
	default:
		return "", nil, fmt.Errorf("unknown dataType %q", dataType)
	}
}

// fanout queues d to every target. It never blocks: a target whose queue is full is disconnected.
func (e *Emulator) fanout(targets []*conn, d *delivery) {
	for _, c := range targets {
		c.enqueue(outFrame{d: d})
	}
}

// matchGroupPattern matches group against a wildcard role pattern: ? is one character other than '.',
// * a run without '.', ** any run, and \ escapes the next character.
func matchGroupPattern(pattern, group string) bool {
	if pattern == "" {
		return group == ""
	}
	switch pattern[0] {
	case '*':
		if len(pattern) > 1 && pattern[1] == '*' {
			rest := pattern[2:]
			for i := 0; i <= len(group); i++ {
				if matchGroupPattern(rest, group[i:]) {
					return true
				}
			}
			return false
		}
		rest := pattern[1:]
		for i := 0; i <= len(group); i++ {
			if matchGroupPattern(rest, group[i:]) {
				return true
			}
			if i < len(group) && group[i] == '.' {
				return false
			}
		}
		return false
	case '?':
		return group != "" && group[0] != '.' && matchGroupPattern(pattern[1:], group[1:])
	case '\\':
		if len(pattern) < 2 {
			return false
		}
		return group != "" && group[0] == pattern[1] && matchGroupPattern(pattern[2:], group[1:])
	default:
		return group != "" && group[0] == pattern[0] && matchGroupPattern(pattern[1:], group[1:])
	}
}
