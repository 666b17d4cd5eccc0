package wps

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// pagedService serves pages of group members keyed by continuationToken and
// answers nextLinks the way the service does (absolute, with its own
// api-version and query order).
func pagedService(t *testing.T, pages map[string]memberPage) *fakeService {
	t.Helper()
	return newFakeService(t, func(w http.ResponseWriter, r *http.Request) {
		p, ok := pages[r.URL.Query().Get("continuationToken")]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if p.NextLink != "" {
			p.NextLink = "http://" + r.Host + p.NextLink
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(p)
	})
}

func TestListConnectionsInGroupPaging(t *testing.T) {
	t.Parallel()
	const path = "/api/hubs/hub1/groups/g%201/connections"
	f := pagedService(t, map[string]memberPage{
		"": {Value: []GroupMember{{"c1", "u1"}, {"c2", ""}},
			NextLink: path + "?api-version=2021-10-01&top=5&maxpagesize=2&continuationToken=t%2B1"},
		"t+1": {Value: []GroupMember{{"c3", "u3"}, {"c4", "u4"}},
			NextLink: path + "?maxpagesize=2&continuationToken=t%202&top=5"},
		"t 2": {Value: []GroupMember{{"c5", "u5"}, {"c6", "u6"}}, NextLink: path + "?continuationToken=t3"},
	})
	h := mustHub(t, newTestClient(t, f), "hub1")
	var got []string
	for m, err := range h.ListConnectionsInGroup(testCtx(t), "g 1", &ListOptions{MaxPageSize: 2, Top: 5}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m.ConnectionID+"/"+m.UserID)
	}
	if want := "c1/u1 c2/ c3/u3 c4/u4 c5/u5"; strings.Join(got, " ") != want {
		t.Errorf("members = %v, want %s (top caps the total)", got, want)
	}
	reqs := f.requests()
	wantURIs := []string{
		path + apiQ + "&maxpagesize=2&top=5",
		path + apiQ + "&top=5&maxpagesize=2&continuationToken=t%2B1",
		path + apiQ + "&maxpagesize=2&continuationToken=t%202&top=5",
	}
	if len(reqs) != len(wantURIs) {
		t.Fatalf("%d requests, want %d", len(reqs), len(wantURIs))
	}
	for i, r := range reqs {
		if r.Method != "GET" || r.RequestURI != wantURIs[i] || r.AuthErr != "" {
			t.Errorf("page %d: %s %s (auth: %q), want GET %s", i+1, r.Method, r.RequestURI, r.AuthErr, wantURIs[i])
		}
	}
}

func TestListConnectionsInGroupStops(t *testing.T) {
	t.Parallel()
	const path = "/api/hubs/hub1/groups/g/connections"
	pages := map[string]memberPage{
		"":   {Value: []GroupMember{{"c1", ""}, {"c2", ""}}, NextLink: path + "?continuationToken=p2"},
		"p2": {Value: []GroupMember{{"c3", ""}}, NextLink: path + "?continuationToken=missing"},
	}
	t.Run("early break fetches no more pages", func(t *testing.T) {
		t.Parallel()
		f := pagedService(t, pages)
		h := mustHub(t, newTestClient(t, f), "hub1")
		for range h.ListConnectionsInGroup(testCtx(t), "g", nil) {
			break
		}
		if n := len(f.requests()); n != 1 {
			t.Errorf("%d requests after an early break, want 1", n)
		}
	})
	t.Run("error on a later page", func(t *testing.T) {
		t.Parallel()
		f := pagedService(t, pages)
		h := mustHub(t, newTestClient(t, f), "hub1")
		var ids []string
		var last error
		for m, err := range h.ListConnectionsInGroup(testCtx(t), "g", nil) {
			if err != nil {
				last = err
				continue
			}
			ids = append(ids, m.ConnectionID)
		}
		if len(ids) != 3 || Classify(last) != ClassInvalid {
			t.Errorf("ids %v, err %v; want 3 members then a 404", ids, last)
		}
	})
	t.Run("nextLink outside the API", func(t *testing.T) {
		t.Parallel()
		f := pagedService(t, map[string]memberPage{"": {Value: []GroupMember{{"c1", ""}}, NextLink: "/other?x=1"}})
		h := mustHub(t, newTestClient(t, f), "hub1")
		if err := firstErr(h.ListConnectionsInGroup(testCtx(t), "g", nil)); err == nil || !strings.Contains(err.Error(), "nextLink") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("nextLink loop", func(t *testing.T) {
		t.Parallel()
		f := pagedService(t, map[string]memberPage{"": {Value: []GroupMember{{"c1", ""}}, NextLink: path}})
		h := mustHub(t, newTestClient(t, f), "hub1")
		if err := firstErr(h.ListConnectionsInGroup(testCtx(t), "g", nil)); err == nil || !strings.Contains(err.Error(), "repeats") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("bad JSON", func(t *testing.T) {
		t.Parallel()
		f := newFakeService(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("{not json")) })
		h := mustHub(t, newTestClient(t, f), "hub1")
		if err := firstErr(h.ListConnectionsInGroup(testCtx(t), "g", nil)); err == nil || !strings.Contains(err.Error(), "decode response") {
			t.Errorf("err = %v", err)
		}
	})
}
