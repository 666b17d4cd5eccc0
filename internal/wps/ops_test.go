package wps

import (
	"context"
	"errors"
	"net/http"
	"testing"
)

const (
	grp    = "a/b c:@&=+$"                  // a group needing every kind of escape
	grpEsc = "a%2Fb%20c%3A%40%26%3D%2B%24"  // encodeURIComponent(grp)
	usr    = "user@x.com"                   //
	usrEsc = "user%40x.com"                 //
	cid    = "conn 1"                       //
	cidEsc = "conn%201"                     //
	flt    = "userId eq 'a b'"              //
	fltEsc = "userId%20eq%20'a%20b'"        // ' is not escaped by encodeURIComponent
	apiQ   = "?api-version=2024-12-01"      //
	hubP   = "/api/hubs/hub1"               //
	agent  = "test-agent/1.0 (+wps-bridge)" //
)

type opCase struct {
	name   string
	call   func(ctx context.Context, h *HubClient) (bool, error)
	method string
	uri    string // RequestURI: escaped path and raw query, exactly
	ct     string // Content-Type, "" = none
	body   string
	status int  // status the fake answers with
	want   bool // result of bool-returning operations
}

func noBool(err error) (bool, error) { return false, err }

func opCases() []opCase {
	json := []byte(`{"a":1}`)
	return []opCase{
		{name: "sendToAll/plain", method: "POST", uri: hubP + "/:send" + apiQ, ct: "application/json", body: `{"a":1}`, status: 202,
			call: func(ctx context.Context, h *HubClient) (bool, error) {
				return noBool(h.SendToAll(ctx, json, ContentJSON, nil))
			}},
		{name: "sendToAll/options", method: "POST", status: 202, ct: "application/json", body: `{"a":1}`,
			uri: hubP + "/:send" + apiQ + "&excluded=c1&excluded=c%202&filter=" + fltEsc + "&messageTtlSeconds=30",
			call: func(ctx context.Context, h *HubClient) (bool, error) {
				return noBool(h.SendToAll(ctx, json, ContentJSON, &SendOptions{Excluded: []string{"c1", "c 2"}, Filter: flt, TTL: 30}))
			}},
		{name: "sendToGroup", method: "POST", status: 202, ct: "text/plain", body: "hello",
			uri: hubP + "/groups/" + grpEsc + "/:send" + apiQ + "&excluded=c1",
			call: func(ctx context.Context, h *HubClient) (bool, error) {
				return noBool(h.SendToGroup(ctx, grp, []byte("hello"), ContentText, &SendOptions{Excluded: []string{"c1"}}))
			}},
		{name: "sendToUser", method: "POST", status: 202, ct: "application/octet-stream", body: "\x00\x01",
			uri: hubP + "/users/" + usrEsc + "/:send" + apiQ + "&filter=" + fltEsc + "&messageTtlSeconds=300",
			call: func(ctx context.Context, h *HubClient) (bool, error) {
				return noBool(h.SendToUser(ctx, usr, []byte{0, 1}, ContentBinary, &SendOptions{Filter: flt, TTL: 300}))
			}},
		{name: "sendToConnection", method: "POST", status: 202, ct: "application/json", body: `"hi"`,
			uri: hubP + "/connections/" + cidEsc + "/:send" + apiQ + "&messageTtlSeconds=1",
			call: func(ctx context.Context, h *HubClient) (bool, error) {
				return noBool(h.SendToConnection(ctx, cid, []byte(`"hi"`), ContentJSON, &SendOptions{TTL: 1}))
			}},
		{name: "closeAllConnections", method: "POST", status: 204,
			uri: hubP + "/:closeConnections" + apiQ + "&excluded=c1&excluded=c2&reason=bye%20now",
			call: func(ctx context.Context, h *HubClient) (bool, error) {
				return noBool(h.CloseAllConnections(ctx, &CloseOptions{Excluded: []string{"c1", "c2"}, Reason: "bye now"}))
			}},
		{name: "closeGroupConnections", method: "POST", status: 204,
			uri: hubP + "/groups/" + grpEsc + "/:closeConnections" + apiQ,
			call: func(ctx context.Context, h *HubClient) (bool, error) {
				return noBool(h.CloseGroupConnections(ctx, grp, nil))
			}},
		{name: "closeUserConnections", method: "POST", status: 204,
			uri: hubP + "/users/" + usrEsc + "/:closeConnections" + apiQ + "&reason=r%26d",
			call: func(ctx context.Context, h *HubClient) (bool, error) {
				return noBool(h.CloseUserConnections(ctx, usr, &CloseOptions{Reason: "r&d"}))
			}},
		{name: "closeConnection/reason", method: "DELETE", status: 204,
			uri: hubP + "/connections/" + cidEsc + apiQ + "&reason=bye%20now",
			call: func(ctx context.Context, h *HubClient) (bool, error) {
				return noBool(h.CloseConnection(ctx, cid, "bye now"))
			}},
		{name: "closeConnection/noReason", method: "DELETE", status: 204, uri: hubP + "/connections/" + cidEsc + apiQ,
			call: func(ctx context.Context, h *HubClient) (bool, error) { return noBool(h.CloseConnection(ctx, cid, "")) }},
		{name: "connectionExists/200", method: "HEAD", status: 200, want: true, uri: hubP + "/connections/" + cidEsc + apiQ,
			call: func(ctx context.Context, h *HubClient) (bool, error) { return h.ConnectionExists(ctx, cid) }},
		{name: "connectionExists/404", method: "HEAD", status: 404, want: false, uri: hubP + "/connections/" + cidEsc + apiQ,
			call: func(ctx context.Context, h *HubClient) (bool, error) { return h.ConnectionExists(ctx, cid) }},
		{name: "groupExists/200", method: "HEAD", status: 200, want: true, uri: hubP + "/groups/" + grpEsc + apiQ,
			call: func(ctx context.Context, h *HubClient) (bool, error) { return h.GroupExists(ctx, grp) }},
		{name: "groupExists/404", method: "HEAD", status: 404, want: false, uri: hubP + "/groups/" + grpEsc + apiQ,
			call: func(ctx context.Context, h *HubClient) (bool, error) { return h.GroupExists(ctx, grp) }},
		{name: "userExists/200", method: "HEAD", status: 200, want: true, uri: hubP + "/users/" + usrEsc + apiQ,
			call: func(ctx context.Context, h *HubClient) (bool, error) { return h.UserExists(ctx, usr) }},
		{name: "userExists/404", method: "HEAD", status: 404, want: false, uri: hubP + "/users/" + usrEsc + apiQ,
			call: func(ctx context.Context, h *HubClient) (bool, error) { return h.UserExists(ctx, usr) }},
		{name: "addConnectionToGroup", method: "PUT", status: 200,
			uri: hubP + "/groups/" + grpEsc + "/connections/" + cidEsc + apiQ,
			call: func(ctx context.Context, h *HubClient) (bool, error) {
				return noBool(h.AddConnectionToGroup(ctx, grp, cid))
			}},
		{name: "removeConnectionFromGroup", method: "DELETE", status: 204,
			uri: hubP + "/groups/" + grpEsc + "/connections/" + cidEsc + apiQ,
			call: func(ctx context.Context, h *HubClient) (bool, error) {
				return noBool(h.RemoveConnectionFromGroup(ctx, grp, cid))
			}},
		{name: "removeConnectionFromAllGroups", method: "DELETE", status: 204,
			uri: hubP + "/connections/" + cidEsc + "/groups" + apiQ,
			call: func(ctx context.Context, h *HubClient) (bool, error) {
				return noBool(h.RemoveConnectionFromAllGroups(ctx, cid))
			}},
		{name: "addUserToGroup", method: "PUT", status: 200, uri: hubP + "/users/" + usrEsc + "/groups/" + grpEsc + apiQ,
			call: func(ctx context.Context, h *HubClient) (bool, error) { return noBool(h.AddUserToGroup(ctx, grp, usr)) }},
		{name: "removeUserFromGroup", method: "DELETE", status: 204, uri: hubP + "/users/" + usrEsc + "/groups/" + grpEsc + apiQ,
			call: func(ctx context.Context, h *HubClient) (bool, error) {
				return noBool(h.RemoveUserFromGroup(ctx, grp, usr))
			}},
		{name: "removeUserFromAllGroups", method: "DELETE", status: 204, uri: hubP + "/users/" + usrEsc + "/groups" + apiQ,
			call: func(ctx context.Context, h *HubClient) (bool, error) {
				return noBool(h.RemoveUserFromAllGroups(ctx, usr))
			}},
		{name: "addConnectionsToGroups", method: "POST", status: 200, uri: hubP + "/:addToGroups" + apiQ,
			ct: "application/json", body: `{"groups":["group1","group 2"],"filter":"startswith(userId, 'listener-')"}`,
			call: func(ctx context.Context, h *HubClient) (bool, error) {
				return noBool(h.AddConnectionsToGroups(ctx, []string{"group1", "group 2"}, "startswith(userId, 'listener-')"))
			}},
		{name: "removeConnectionsFromGroups", method: "POST", status: 200, uri: hubP + "/:removeFromGroups" + apiQ,
			ct: "application/json", body: `{"groups":["group1"]}`,
			call: func(ctx context.Context, h *HubClient) (bool, error) {
				return noBool(h.RemoveConnectionsFromGroups(ctx, []string{"group1"}, ""))
			}},
		{name: "grantPermission", method: "PUT", status: 200,
			uri: hubP + "/permissions/sendToGroup/connections/" + cidEsc + apiQ + "&targetName=" + grpEsc,
			call: func(ctx context.Context, h *HubClient) (bool, error) {
				return noBool(h.GrantPermission(ctx, PermissionSendToGroup, cid, grp))
			}},
		{name: "revokePermission", method: "DELETE", status: 204,
			uri: hubP + "/permissions/joinLeaveGroup/connections/" + cidEsc + apiQ,
			call: func(ctx context.Context, h *HubClient) (bool, error) {
				return noBool(h.RevokePermission(ctx, PermissionJoinLeaveGroup, cid, ""))
			}},
		{name: "checkPermission/200", method: "HEAD", status: 200, want: true,
			uri: hubP + "/permissions/joinLeaveGroup/connections/" + cidEsc + apiQ + "&targetName=g1",
			call: func(ctx context.Context, h *HubClient) (bool, error) {
				return h.CheckPermission(ctx, PermissionJoinLeaveGroup, cid, "g1")
			}},
		{name: "checkPermission/404", method: "HEAD", status: 404, want: false,
			uri: hubP + "/permissions/sendToGroup/connections/" + cidEsc + apiQ + "&targetName=g1",
			call: func(ctx context.Context, h *HubClient) (bool, error) {
				return h.CheckPermission(ctx, PermissionSendToGroup, cid, "g1")
			}},
		{name: "serviceStatus", method: "HEAD", status: 200, want: true, uri: "/api/health" + apiQ,
			call: func(ctx context.Context, h *HubClient) (bool, error) { return h.c.ServiceStatus(ctx) }},
	}
}

func TestOperationsOnTheWire(t *testing.T) {
	t.Parallel()
	for _, tc := range opCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeService(t, status(tc.status))
			h := mustHub(t, newTestClient(t, f, WithUserAgent(agent)), "hub1")

			got, err := tc.call(testCtx(t), h)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if got != tc.want {
				t.Errorf("result = %v, want %v", got, tc.want)
			}
			r := f.only(t)
			if r.Method != tc.method {
				t.Errorf("method = %s, want %s", r.Method, tc.method)
			}
			if r.RequestURI != tc.uri {
				t.Errorf("request URI\n got %s\nwant %s", r.RequestURI, tc.uri)
			}
			if r.AuthErr != "" {
				t.Errorf("JWT: %s", r.AuthErr)
			}
			if r.Aud != f.srv.URL+tc.uri {
				t.Errorf("aud = %s, want the full URL %s", r.Aud, f.srv.URL+tc.uri)
			}
			for k, want := range map[string]string{"Accept": "application/json", "User-Agent": agent, "Content-Type": tc.ct} {
				if v := r.Header.Get(k); v != want {
					t.Errorf("header %s = %q, want %q", k, v, want)
				}
			}
			if r.Body != tc.body {
				t.Errorf("body = %q, want %q", r.Body, tc.body)
			}
		})
	}
}

// TestExactSuccessCodes answers each operation with a success code of another
// operation: the client must not accept it.
func TestExactSuccessCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range opCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wrong := http.StatusOK
			if tc.status == http.StatusOK || tc.status == http.StatusNotFound {
				wrong = http.StatusNoContent
			}
			f := newFakeService(t, status(wrong))
			h := mustHub(t, newTestClient(t, f), "hub1")
			got, err := tc.call(testCtx(t), h)
			se, ok := errors.AsType[*StatusError](err)
			if !ok || se.StatusCode != wrong {
				t.Fatalf("err = %v, want a *StatusError with status %d", err, wrong)
			}
			if got {
				t.Error("result = true on an unexpected status")
			}
			if c := Classify(err); c != ClassInvalid {
				t.Errorf("Classify = %s, want invalid", c)
			}
		})
	}
}
