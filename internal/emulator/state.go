package emulator

import (
	"slices"
	"strings"
	"sync"

	"github.com/wps-bridge/bridge/internal/emulator/filter"
)

// Permission names of the REST grant/revoke/check operations.
const (
	permSendToGroup    = "sendToGroup"
	permJoinLeaveGroup = "joinLeaveGroup"
)

// hub holds the connections, groups and users of one hub. mu guards the maps and every conn's groups and grants.
// Nothing writes to a socket while holding mu: deliveries are queued to per-connection writers.
type hub struct {
	e    *Emulator
	name string

	mu         sync.RWMutex
	conns      map[string]*conn
	groups     map[string]map[*conn]struct{}
	users      map[string]map[*conn]struct{}
	userGroups map[string]map[string]struct{} // user memberships, also applied to the user's future connections
}

func newHub(e *Emulator, name string) *hub {
	return &hub{
		e:          e,
		name:       name,
		conns:      make(map[string]*conn),
		groups:     make(map[string]map[*conn]struct{}),
		users:      make(map[string]map[*conn]struct{}),
		userGroups: make(map[string]map[string]struct{}),
	}
}

// attach registers c and joins the token's groups and the user's persisted groups.
func (h *hub) attach(c *conn, tokenGroups []string) {
	h.mu.Lock()
	h.conns[c.id] = c
	c.attached = true
	if c.userID != "" {
		addTo(h.users, c.userID, c)
		for g := range h.userGroups[c.userID] {
			h.joinLocked(c, g)
		}
	}
	for _, g := range tokenGroups {
		h.joinLocked(c, g)
	}
	h.mu.Unlock()
	h.e.feed.stateChanged()
}

// detach removes c from every map. It reports whether c was attached.
func (h *hub) detach(c *conn) bool {
	h.mu.Lock()
	if !c.attached {
		h.mu.Unlock()
		return false
	}
	c.attached = false
	delete(h.conns, c.id)
	if c.userID != "" {
		removeFrom(h.users, c.userID, c)
	}
	for g := range c.groups {
		removeFrom(h.groups, g, c)
	}
	clear(c.groups)
	h.mu.Unlock()
	h.e.feed.stateChanged()
	return true
}

func addTo[K comparable](m map[K]map[*conn]struct{}, k K, c *conn) {
	set := m[k]
	if set == nil {
		set = make(map[*conn]struct{})
		m[k] = set
	}
	set[c] = struct{}{}
}

func removeFrom[K comparable](m map[K]map[*conn]struct{}, k K, c *conn) {
	if set := m[k]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(m, k)
		}
	}
}

func (h *hub) joinLocked(c *conn, g string) {
	if !c.attached {
		return
	}
	c.groups[g] = struct{}{}
	addTo(h.groups, g, c)
}

func (h *hub) leaveLocked(c *conn, g string) {
	delete(c.groups, g)
	removeFrom(h.groups, g, c)
}

func (h *hub) join(c *conn, g string) {
	h.mu.Lock()
	h.joinLocked(c, g)
	h.mu.Unlock()
	h.e.feed.stateChanged()
}

func (h *hub) leave(c *conn, g string) {
	h.mu.Lock()
	h.leaveLocked(c, g)
	h.mu.Unlock()
	h.e.feed.stateChanged()
}

func (h *hub) conn(id string) *conn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.conns[id]
}

func (h *hub) connList() []*conn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]*conn, 0, len(h.conns))
	for _, c := range h.conns {
		out = append(out, c)
	}
	return out
}

func (h *hub) connCount() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.conns)
}

func (h *hub) groupExists(g string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.groups[g]) > 0
}

func (h *hub) userExists(u string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.users[u]) > 0
}

// scope selects the candidate connections of a send or close.
type scope struct {
	all          bool
	group        string
	user         string
	connectionID string
}

// selectConns returns the connections in sc that are not excluded and match f (nil matches all).
func (h *hub) selectConns(sc scope, excluded []string, f *filter.Expr) []*conn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var candidates map[*conn]struct{}
	switch {
	case sc.all:
		out := make([]*conn, 0, len(h.conns))
		for _, c := range h.conns {
			if h.keep(c, excluded, f) {
				out = append(out, c)
			}
		}
		return out
	case sc.connectionID != "":
		if c := h.conns[sc.connectionID]; c != nil && h.keep(c, excluded, f) {
			return []*conn{c}
		}
		return nil
	case sc.user != "":
		candidates = h.users[sc.user]
	default:
		candidates = h.groups[sc.group]
	}
	out := make([]*conn, 0, len(candidates))
	for c := range candidates {
		if h.keep(c, excluded, f) {
			out = append(out, c)
		}
	}
	return out
}

func (h *hub) keep(c *conn, excluded []string, f *filter.Expr) bool {
	if slices.Contains(excluded, c.id) {
		return false
	}
	if f == nil {
		return true
	}
	return f.Match(&filter.Target{UserID: c.userID, ConnectionID: c.id, Groups: c.groups})
}

// addUserToGroup persists the membership and applies it to the user's live connections.
func (h *hub) addUserToGroup(u, g string) {
	h.mu.Lock()
	set := h.userGroups[u]
	if set == nil {
		set = make(map[string]struct{})
		h.userGroups[u] = set
	}
	set[g] = struct{}{}
	for c := range h.users[u] {
		h.joinLocked(c, g)
	}
	h.mu.Unlock()
	h.e.feed.stateChanged()
}

// removeUserFromGroups removes the user from the given groups, or from all groups when groups is nil.
func (h *hub) removeUserFromGroups(u string, groups []string) {
	h.mu.Lock()
	if groups == nil {
		delete(h.userGroups, u)
	} else if set := h.userGroups[u]; set != nil {
		for _, g := range groups {
			delete(set, g)
		}
		if len(set) == 0 {
			delete(h.userGroups, u)
		}
	}
	for c := range h.users[u] {
		if groups == nil {
			for g := range c.groups {
				h.leaveLocked(c, g)
			}
			continue
		}
		for _, g := range groups {
			h.leaveLocked(c, g)
		}
	}
	h.mu.Unlock()
	h.e.feed.stateChanged()
}

// removeConnFromAllGroups removes c from every group it is in.
func (h *hub) removeConnFromAllGroups(c *conn) {
	h.mu.Lock()
	for g := range c.groups {
		h.leaveLocked(c, g)
	}
	h.mu.Unlock()
	h.e.feed.stateChanged()
}

// changeGroups adds (or removes) every connection matching f (nil = all) to (or from) groups.
func (h *hub) changeGroups(groups []string, f *filter.Expr, add bool) {
	h.mu.Lock()
	for _, c := range h.conns {
		if !h.keep(c, nil, f) {
			continue
		}
		for _, g := range groups {
			if add {
				h.joinLocked(c, g)
			} else {
				h.leaveLocked(c, g)
			}
		}
	}
	h.mu.Unlock()
	h.e.feed.stateChanged()
}

// groupMembers returns the ids and users of the group's connections sorted by connection id.
func (h *hub) groupMembers(g string) []*conn {
	h.mu.RLock()
	out := make([]*conn, 0, len(h.groups[g]))
	for c := range h.groups[g] {
		out = append(out, c)
	}
	h.mu.RUnlock()
	slices.SortFunc(out, func(a, b *conn) int { return strings.Compare(a.id, b.id) })
	return out
}

// setGrant grants or revokes permission p on target ("" = every group) for c. Revoking with target ""
// removes every grant of p, including those that came from the token's roles.
func (h *hub) setGrant(c *conn, p, target string, grant bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case grant:
		c.grant(p, target)
	case target == "":
		delete(c.grants, p)
		delete(c.patterns, p)
	default:
		delete(c.grants[p], target)
	}
}

// allowed reports whether c holds permission p for group (REST grants and token roles both count).
// With group "" it reports whether c holds p for every group.
func (h *hub) allowed(c *conn, p, group string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	set := c.grants[p]
	if _, ok := set[""]; ok {
		return true
	}
	if group == "" {
		return false
	}
	if _, ok := set[group]; ok {
		return true
	}
	for _, pat := range c.patterns[p] {
		if matchGroupPattern(pat, group) {
			return true
		}
	}
	return false
}
