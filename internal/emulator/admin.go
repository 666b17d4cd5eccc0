package emulator

import (
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

//go:embed inspector/index.html
var inspectorFS embed.FS

const (
	feedRecent     = 100 // feed items kept for new inspector pages
	feedSubBuffer  = 256 // per-subscriber buffer; a subscriber that falls behind loses items
	previewLen     = 160 // bytes of payload shown in the feed
	sseHeartbeat   = 15 * time.Second
	maxFaultsBytes = 4 << 10
)

func (e *Emulator) adminRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		b, err := inspectorFS.ReadFile("inspector/index.html")
		if err != nil {
			http.Error(w, "inspector page missing: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(b)
	})
	m.HandleFunc("GET /admin/state", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, e.State()) })
	m.HandleFunc("GET /admin/stats", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, e.Stats()) })
	m.HandleFunc("GET /admin/faults", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, e.faultsView()) })
	m.HandleFunc("PUT /admin/faults", e.handlePutFaults)
	m.HandleFunc("DELETE /admin/faults", func(w http.ResponseWriter, r *http.Request) {
		e.setFaults(r.URL.Query().Get("hub"), Faults{})
		writeJSON(w, http.StatusOK, e.faultsView())
	})
	m.HandleFunc("GET /admin/events", e.handleEvents)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// FaultsView is the JSON shape of GET /admin/faults.
type FaultsView struct {
	Global Faults            `json:"global"`
	Hubs   map[string]Faults `json:"hubs"`
}

func (e *Emulator) faultsView() FaultsView {
	all := e.faultsSnapshot()
	v := FaultsView{Global: all[""], Hubs: make(map[string]Faults)}
	for k, f := range all {
		if k != "" {
			v.Hubs[k] = f
		}
	}
	return v
}

// handlePutFaults serves PUT /admin/faults?hub=NAME with a JSON Faults body ("" or no hub = global).
func (e *Emulator) handlePutFaults(w http.ResponseWriter, r *http.Request) {
	hub := r.URL.Query().Get("hub")
	if hub != "" {
		if err := validateHub(hub); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	body, err := readBody(r.Body, r.ContentLength, maxFaultsBytes)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var f Faults
	if err := json.Unmarshal(body, &f); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	e.setFaults(hub, f)
	e.log.Info("faults changed", "hub", hub, "rate429", f.Rate429, "rate503", f.Rate503,
		"retryAfter", f.RetryAfter, "latency", f.Latency)
	writeJSON(w, http.StatusOK, e.faultsView())
}

// State is the JSON shape of GET /admin/state, a snapshot of every hub.
type State struct {
	Hubs   []HubState  `json:"hubs"`
	Stats  Stats       `json:"stats"`
	Faults FaultsView  `json:"faults"`
	Recent []FeedEvent `json:"recent"`
}

// HubState describes one hub.
type HubState struct {
	Name        string            `json:"name"`
	Connections []ConnectionState `json:"connections"`
	Groups      []GroupState      `json:"groups"`
	Users       []UserState       `json:"users"`
}

// ConnectionState describes one client connection.
type ConnectionState struct {
	ConnectionID string              `json:"connectionId"`
	UserID       string              `json:"userId,omitempty"`
	Protocol     string              `json:"protocol"`
	Groups       []string            `json:"groups"`
	Roles        []string            `json:"roles,omitempty"`
	Grants       map[string][]string `json:"grants,omitempty"`
	ConnectedAt  time.Time           `json:"connectedAt"`
	Delivered    uint64              `json:"delivered"`
	Queued       int                 `json:"queued"`
}

// GroupState describes one non-empty group.
type GroupState struct {
	Name    string   `json:"name"`
	Members []string `json:"members"`
}

// UserState describes a user with live connections or persisted group memberships.
type UserState struct {
	Name        string   `json:"name"`
	Connections []string `json:"connections"`
	Groups      []string `json:"groups,omitempty"`
}

// State returns a snapshot of all hubs, connections, groups and users, sorted by name.
func (e *Emulator) State() State {
	s := State{Stats: e.Stats(), Faults: e.faultsView(), Recent: e.feed.recentItems()}
	for _, h := range e.hubList() {
		s.Hubs = append(s.Hubs, h.state())
	}
	slices.SortFunc(s.Hubs, func(a, b HubState) int { return strings.Compare(a.Name, b.Name) })
	return s
}

func (h *hub) state() HubState {
	h.mu.RLock()
	defer h.mu.RUnlock()
	hs := HubState{Name: h.name, Connections: []ConnectionState{}, Groups: []GroupState{}, Users: []UserState{}}
	for _, c := range h.conns {
		cs := ConnectionState{
			ConnectionID: c.id, UserID: c.userID, Protocol: c.proto.String(), Groups: sortedKeys(c.groups),
			Roles: c.roles, ConnectedAt: c.connectedAt, Delivered: c.delivered.Load(), Queued: len(c.queue),
		}
		for p, set := range c.grants {
			if cs.Grants == nil {
				cs.Grants = make(map[string][]string)
			}
			targets := sortedKeys(set)
			for i, t := range targets {
				if t == "" {
					targets[i] = "*"
				}
			}
			cs.Grants[p] = targets
		}
		hs.Connections = append(hs.Connections, cs)
	}
	slices.SortFunc(hs.Connections, func(a, b ConnectionState) int { return strings.Compare(a.ConnectionID, b.ConnectionID) })
	for g, members := range h.groups {
		gs := GroupState{Name: g}
		for c := range members {
			gs.Members = append(gs.Members, c.id)
		}
		slices.Sort(gs.Members)
		hs.Groups = append(hs.Groups, gs)
	}
	slices.SortFunc(hs.Groups, func(a, b GroupState) int { return strings.Compare(a.Name, b.Name) })
	users := make(map[string]*UserState)
	for u, conns := range h.users {
		us := &UserState{Name: u, Connections: []string{}}
		for c := range conns {
			us.Connections = append(us.Connections, c.id)
		}
		slices.Sort(us.Connections)
		users[u] = us
	}
	for u, groups := range h.userGroups {
		us := users[u]
		if us == nil {
			us = &UserState{Name: u, Connections: []string{}}
			users[u] = us
		}
		us.Groups = sortedKeys(groups)
	}
	for _, us := range users {
		hs.Users = append(hs.Users, *us)
	}
	slices.SortFunc(hs.Users, func(a, b UserState) int { return strings.Compare(a.Name, b.Name) })
	return hs
}

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// FeedEvent is one item of the inspector's live feed (GET /admin/events, Server-Sent Events).
type FeedEvent struct {
	Kind       string    `json:"kind"` // "delivery", "event" (a client event) or "state" (state changed)
	At         time.Time `json:"at"`
	Hub        string    `json:"hub,omitempty"`
	Target     string    `json:"target,omitempty"` // "all", "group g", "user u", "connection c"
	From       string    `json:"from,omitempty"`
	DataType   string    `json:"dataType,omitempty"`
	Size       int       `json:"size,omitempty"`
	Preview    string    `json:"preview,omitempty"`
	Recipients int       `json:"recipients"`
}

// feed fans FeedEvents out to inspector subscribers and keeps the most recent deliveries.
type feed struct {
	subscribers atomic.Int32

	mu     sync.Mutex
	subs   map[chan FeedEvent]struct{}
	closed bool
	recent []FeedEvent // ring buffer
	next   int
}

func newFeed() *feed {
	return &feed{subs: make(map[chan FeedEvent]struct{}), recent: make([]FeedEvent, 0, feedRecent)}
}

func (f *feed) delivery(hub, target, from, dataType string, payload []byte, recipients int) {
	ev := FeedEvent{Kind: "delivery", At: time.Now(), Hub: hub, Target: target, From: from, DataType: dataType,
		Size: len(payload), Preview: preview(dataType, payload), Recipients: recipients}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.recent) < feedRecent {
		f.recent = append(f.recent, ev)
	} else {
		f.recent[f.next] = ev
		f.next = (f.next + 1) % feedRecent
	}
	f.publishLocked(ev)
}

func (f *feed) event(hub, connectionID, userID, name string, size int) {
	if f.subscribers.Load() == 0 {
		return
	}
	from := "connection " + connectionID
	if userID != "" {
		from += " (user " + userID + ")"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.publishLocked(FeedEvent{Kind: "event", At: time.Now(), Hub: hub, Target: "event " + name, From: from, Size: size})
}

func (f *feed) stateChanged() {
	if f.subscribers.Load() == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.publishLocked(FeedEvent{Kind: "state", At: time.Now()})
}

func (f *feed) publishLocked(ev FeedEvent) {
	for ch := range f.subs {
		select {
		case ch <- ev:
		default: // a slow inspector page misses items rather than slowing the emulator down
		}
	}
}

// recentItems returns the kept deliveries, oldest first.
func (f *feed) recentItems() []FeedEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]FeedEvent, 0, len(f.recent))
	out = append(out, f.recent[f.next:]...)
	return append(out, f.recent[:f.next]...)
}

func (f *feed) subscribe() chan FeedEvent {
	ch := make(chan FeedEvent, feedSubBuffer)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		close(ch)
		return ch
	}
	f.subs[ch] = struct{}{}
	f.subscribers.Add(1)
	return ch
}

func (f *feed) unsubscribe(ch chan FeedEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.subs[ch]; ok {
		delete(f.subs, ch)
		f.subscribers.Add(-1)
		close(ch)
	}
}

func (f *feed) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for ch := range f.subs {
		delete(f.subs, ch)
		f.subscribers.Add(-1)
		close(ch)
	}
}

func preview(dataType string, payload []byte) string {
	if dataType == "binary" {
		return fmt.Sprintf("<%d bytes>", len(payload))
	}
	p := payload
	if len(p) > previewLen {
		p = p[:previewLen]
		for len(p) > 0 && !utf8.Valid(p) {
			p = p[:len(p)-1]
		}
		return string(p) + "…"
	}
	return string(p)
}

// handleEvents streams FeedEvents as Server-Sent Events until the client leaves or the emulator closes.
func (e *Emulator) handleEvents(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	ch := e.feed.subscribe()
	defer e.feed.unsubscribe(ch)
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return
	}
	flusher.Flush()
	heartbeat := time.NewTicker(sseHeartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-heartbeat.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
		case ev, ok := <-ch:
			if !ok {
				return
			}
			b, err := json.Marshal(ev)
			if err != nil {
				e.log.Warn("encode feed event", "error", err)
				continue
			}
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Kind, b); err != nil {
				return
			}
		}
		flusher.Flush()
	}
}
