package wps

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidationBeforeNetwork(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("g", 1025)
	cases := []struct {
		name  string
		field string
		call  func(ctx context.Context, h *HubClient) error
	}{
		{"group empty", "group", func(ctx context.Context, h *HubClient) error { return h.SendToGroup(ctx, "", nil, ContentJSON, nil) }},
		{"group dot", "group", func(ctx context.Context, h *HubClient) error { return h.SendToGroup(ctx, ".", nil, ContentJSON, nil) }},
		{"group dotdot", "group", func(ctx context.Context, h *HubClient) error { _, err := h.GroupExists(ctx, ".."); return err }},
		{"group too long", "group", func(ctx context.Context, h *HubClient) error { return h.SendToGroup(ctx, long, nil, ContentJSON, nil) }},
		{"group whitespace", "group", func(ctx context.Context, h *HubClient) error { return h.CloseGroupConnections(ctx, " \t ", nil) }},
		{"group newline", "group", func(ctx context.Context, h *HubClient) error { return h.AddConnectionToGroup(ctx, "a\nb", "c") }},
		{"group CR", "group", func(ctx context.Context, h *HubClient) error { return h.AddUserToGroup(ctx, "a\rb", "u") }},
		{"group U+2028", "group", func(ctx context.Context, h *HubClient) error { return h.RemoveUserFromGroup(ctx, "a\u2028b", "u") }},
		{"connection empty", "connectionId", func(ctx context.Context, h *HubClient) error { return h.CloseConnection(ctx, "", "") }},
		{"connection dotdot", "connectionId", func(ctx context.Context, h *HubClient) error {
			return h.RemoveConnectionFromGroup(ctx, "g", "..")
		}},
		{"connection dot", "connectionId", func(ctx context.Context, h *HubClient) error {
			return h.RemoveConnectionFromAllGroups(ctx, ".")
		}},
		{"user empty", "userId", func(ctx context.Context, h *HubClient) error { return h.SendToUser(ctx, "", nil, ContentJSON, nil) }},
		{"user dot", "userId", func(ctx context.Context, h *HubClient) error { return h.RemoveUserFromAllGroups(ctx, ".") }},
		{"user close", "userId", func(ctx context.Context, h *HubClient) error { return h.CloseUserConnections(ctx, "", nil) }},
		{"ttl negative", "ttl", func(ctx context.Context, h *HubClient) error {
			return h.SendToAll(ctx, nil, ContentJSON, &SendOptions{TTL: -1})
		}},
		{"ttl 301", "ttl", func(ctx context.Context, h *HubClient) error {
			return h.SendToConnection(ctx, "c", nil, ContentJSON, &SendOptions{TTL: 301})
		}},
		{"content type", "contentType", func(ctx context.Context, h *HubClient) error {
			return h.SendToAll(ctx, nil, "application/xml", nil)
		}},
		{"excluded on user", "excluded", func(ctx context.Context, h *HubClient) error {
			return h.SendToUser(ctx, "u", nil, ContentJSON, &SendOptions{Excluded: []string{"c"}})
		}},
		{"excluded on connection", "excluded", func(ctx context.Context, h *HubClient) error {
			return h.SendToConnection(ctx, "c", nil, ContentJSON, &SendOptions{Excluded: []string{"c"}})
		}},
		{"filter on connection", "filter", func(ctx context.Context, h *HubClient) error {
			return h.SendToConnection(ctx, "c", nil, ContentJSON, &SendOptions{Filter: "true"})
		}},
		{"empty excluded id", "excluded", func(ctx context.Context, h *HubClient) error {
			return h.CloseAllConnections(ctx, &CloseOptions{Excluded: []string{""}})
		}},
		{"permission unknown", "permission", func(ctx context.Context, h *HubClient) error {
			return h.GrantPermission(ctx, "admin", "c", "")
		}},
		{"permission connection", "connectionId", func(ctx context.Context, h *HubClient) error {
			return h.RevokePermission(ctx, PermissionSendToGroup, "", "")
		}},
		{"targetName newline", "targetName", func(ctx context.Context, h *HubClient) error {
			_, err := h.CheckPermission(ctx, PermissionSendToGroup, "c", "a\nb")
			return err
		}},
		{"groups empty", "groups", func(ctx context.Context, h *HubClient) error { return h.AddConnectionsToGroups(ctx, nil, "") }},
		{"groups blank entry", "groups", func(ctx context.Context, h *HubClient) error {
			return h.RemoveConnectionsFromGroups(ctx, []string{"ok", " "}, "")
		}},
		{"maxpagesize 201", "maxPageSize", func(ctx context.Context, h *HubClient) error {
			return firstErr(h.ListConnectionsInGroup(ctx, "g", &ListOptions{MaxPageSize: 201}))
		}},
		{"maxpagesize negative", "maxPageSize", func(ctx context.Context, h *HubClient) error {
			return firstErr(h.ListConnectionsInGroup(ctx, "g", &ListOptions{MaxPageSize: -1}))
		}},
		{"top negative", "top", func(ctx context.Context, h *HubClient) error {
			return firstErr(h.ListConnectionsInGroup(ctx, "g", &ListOptions{Top: -1}))
		}},
		{"list group", "group", func(ctx context.Context, h *HubClient) error {
			return firstErr(h.ListConnectionsInGroup(ctx, "", nil))
		}},
		{"lifetime 59s", "lifetime", func(ctx context.Context, h *HubClient) error {
			_, err := h.GenerateClientToken(ctx, &TokenOptions{Lifetime: 59 * time.Second})
			return err
		}},
		{"lifetime local", "lifetime", func(ctx context.Context, h *HubClient) error {
			_, err := h.GetClientAccessToken(ctx, &TokenOptions{Lifetime: -time.Minute})
			return err
		}},
		{"protocol", "protocol", func(ctx context.Context, h *HubClient) error {
			_, err := h.GetClientAccessToken(ctx, &TokenOptions{Protocol: "stomp"})
			return err
		}},
		{"token group", "groups", func(ctx context.Context, h *HubClient) error {
			_, err := h.GetClientAccessToken(ctx, &TokenOptions{Groups: []string{""}})
			return err
		}},
		{"token role", "roles", func(ctx context.Context, h *HubClient) error {
			_, err := h.GenerateClientToken(ctx, &TokenOptions{Roles: []string{""}})
			return err
		}},
		{"jwt alg header", "jwtHeaders", func(ctx context.Context, h *HubClient) error {
			_, err := h.GetClientAccessToken(ctx, &TokenOptions{JWTHeaders: map[string]any{"alg": "none"}})
			return err
		}},
	}
	f := newFakeService(t, status(500))
	h := mustHub(t, newTestClient(t, f), "hub1")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(testCtx(t), h)
			ve, ok := errors.AsType[*ValidationError](err)
			if !ok {
				t.Fatalf("err = %v, want *ValidationError", err)
			}
			if ve.Field != tc.field {
				t.Errorf("Field = %q, want %q", ve.Field, tc.field)
			}
			if !errors.Is(err, ErrValidation) || Classify(err) != ClassInvalid {
				t.Errorf("err %v: not ErrValidation/ClassInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("message %q does not name the field", err)
			}
		})
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("invalid calls reached the network %d times", n)
	}
}

func firstErr[T any](seq func(func(T, error) bool)) error {
	for _, err := range seq {
		if err != nil {
			return err
		}
	}
	return nil
}

func TestHubNames(t *testing.T) {
	t.Parallel()
	c, err := NewClient("https://x.webpubsub.azure.com", WithAccessKey(testKey))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		hub string
		ok  bool
	}{
		{"chat", true},
		{"a", true},
		{"Hub_1`,.[x]", true},
		{"a" + strings.Repeat("b", 127), true},
		{"a" + strings.Repeat("b", 128), false},
		{"", false},
		{"1hub", false},
		{"_hub", false},
		{"hub-1", false},
		{"hub 1", false},
		{"hub/x", false},
		{"hüb", false},
	} {
		t.Run(tc.hub, func(t *testing.T) {
			h, err := c.Hub(tc.hub)
			if tc.ok != (err == nil) {
				t.Fatalf("Hub(%q) err = %v, want ok=%v", tc.hub, err, tc.ok)
			}
			if err != nil {
				if ve, ok := errors.AsType[*ValidationError](err); !ok || ve.Field != "hub" {
					t.Errorf("err = %#v, want ValidationError on hub", err)
				}
				return
			}
			if h.Name() != tc.hub {
				t.Errorf("Name() = %q", h.Name())
			}
			again, _ := c.Hub(tc.hub)
			if again != h {
				t.Error("Hub is not cached")
			}
		})
	}
}

func TestHubEscapedInPath(t *testing.T) {
	t.Parallel()
	f := newFakeService(t, status(202))
	h := mustHub(t, newTestClient(t, f), "Hub[1],x`")
	if err := h.SendToAll(testCtx(t), []byte("{}"), ContentJSON, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := f.only(t).RequestURI, "/api/hubs/Hub%5B1%5D%2Cx%60/:send"+apiQ; got != want {
		t.Errorf("RequestURI = %s, want %s", got, want)
	}
}

func TestUnreservedPunctuationKeptInPath(t *testing.T) {
	t.Parallel()
	f := newFakeService(t, status(200))
	h := mustHub(t, newTestClient(t, f), "hub1")
	if err := h.AddConnectionToGroup(testCtx(t), "it's (x)*!~", "c.1_-"); err != nil {
		t.Fatal(err)
	}
	r := f.only(t)
	if want := "/api/hubs/hub1/groups/it's%20(x)*!~/connections/c.1_-" + apiQ; r.RequestURI != want || r.AuthErr != "" {
		t.Errorf("RequestURI = %s (auth %q), want %s", r.RequestURI, r.AuthErr, want)
	}
}

func TestEncodeURIComponent(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                       "",
		"AZaz09-_.!~*'()":        "AZaz09-_.!~*'()",
		":@&=+$,;/?#[] %":        "%3A%40%26%3D%2B%24%2C%3B%2F%3F%23%5B%5D%20%25",
		"ü€":                     "%C3%BC%E2%82%AC",
		"\x00\n":                 "%00%0A",
		"startswith(userId,'a')": "startswith(userId%2C'a')",
	} {
		if got := string(encodeURIComponent(nil, in)); got != want {
			t.Errorf("encodeURIComponent(%q) = %q, want %q", in, got, want)
		}
	}
}
