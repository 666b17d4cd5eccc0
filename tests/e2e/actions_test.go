package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// actionCase is one envelope and the REST request it must produce.
type actionCase struct {
	name     string
	envelope string // JSON object without "hub" (added per source)
	method   string
	path     string // after /api/hubs/{hub}
	query    url.Values
	ctype    string // "" for operations without a body
	body     []byte
	jsonBody bool // compare body as JSON (models serialised by the client)
}

var binaryPayload = []byte{0, 1, 2, 0xfe, 0xff}

// actionCases covers the 18 operations and the 2 multicast extensions of
// design.md §2, with the request webpubsub-api.md §1 defines for each.
func actionCases() []actionCase {
	q := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	return []actionCase{
		{"sendToAll", `{"actionName":"sendToAll","data":{"a":1},"excluded":["c1","c2"],"filter":"userId ne 'x'","ttl":30}`,
			"POST", "/:send", q("excluded", "c1", "excluded", "c2", "filter", "userId ne 'x'", "messageTtlSeconds", "30"),
			"application/json", []byte(`{"a":1}`), false},
		{"sendToGroup", `{"actionName":"sendToGroup","group":"room 1/x","data":"hello","excluded":["c3"]}`,
			"POST", "/groups/room%201%2Fx/:send", q("excluded", "c3"), "text/plain", []byte("hello"), false},
		{"sendToUser", `{"actionName":"sendToUser","userId":"u@1","dataType":"binary","data":"` + base64.StdEncoding.EncodeToString(binaryPayload) + `","filter":"'g' in groups"}`,
			"POST", "/users/u%401/:send", q("filter", "'g' in groups"), "application/octet-stream", binaryPayload, false},
		{"sendToConnection", `{"actionName":"sendToConnection","connectionId":"conn1","data":[1,2],"ttl":5}`,
			"POST", "/connections/conn1/:send", q("messageTtlSeconds", "5"), "application/json", []byte(`[1,2]`), false},
		{"addConnectionToGroup", `{"actionName":"addConnectionToGroup","group":"g1","connectionId":"conn2"}`,
			"PUT", "/groups/g1/connections/conn2", q(), "", nil, false},
		{"removeConnectionFromGroup", `{"actionName":"removeConnectionFromGroup","group":"g1","connectionId":"conn3"}`,
			"DELETE", "/groups/g1/connections/conn3", q(), "", nil, false},
		{"removeConnectionFromAllGroups", `{"actionName":"removeConnectionFromAllGroups","connectionId":"conn4"}`,
			"DELETE", "/connections/conn4/groups", q(), "", nil, false},
		{"addUserToGroup", `{"actionName":"addUserToGroup","group":"g2","userId":"alice"}`,
			"PUT", "/users/alice/groups/g2", q(), "", nil, false},
		{"removeUserFromGroup", `{"actionName":"removeUserFromGroup","group":"g2","userId":"bob"}`,
			"DELETE", "/users/bob/groups/g2", q(), "", nil, false},
		{"removeUserFromAllGroups", `{"actionName":"removeUserFromAllGroups","userId":"carol"}`,
			"DELETE", "/users/carol/groups", q(), "", nil, false},
		{"addConnectionsToGroups", `{"actionName":"addConnectionsToGroups","groups":["ga","gb"],"filter":"userId eq 'u'"}`,
			"POST", "/:addToGroups", q(), "application/json", []byte(`{"groups":["ga","gb"],"filter":"userId eq 'u'"}`), true},
		{"removeConnectionsFromGroups", `{"actionName":"removeConnectionsFromGroups","groups":["gc"]}`,
			"POST", "/:removeFromGroups", q(), "application/json", []byte(`{"groups":["gc"]}`), true},
		{"closeConnection", `{"actionName":"closeClientConnection","connectionId":"conn5","reason":"bye now"}`,
			"DELETE", "/connections/conn5", q("reason", "bye now"), "", nil, false},
		{"closeAllConnections", `{"actionName":"closeAllConnections","excluded":["c9"],"reason":"maintenance"}`,
			"POST", "/:closeConnections", q("excluded", "c9", "reason", "maintenance"), "", nil, false},
		{"closeGroupConnections", `{"actionName":"closeGroupConnections","group":"g3","reason":"r"}`,
			"POST", "/groups/g3/:closeConnections", q("reason", "r"), "", nil, false},
		{"closeUserConnections", `{"actionName":"closeUserConnections","userId":"dave","excluded":["c7","c8"]}`,
			"POST", "/users/dave/:closeConnections", q("excluded", "c7", "excluded", "c8"), "", nil, false},
		{"grantPermission", `{"actionName":"grantPermission","permission":"sendToGroup","connectionId":"conn6","targetName":"g4"}`,
			"PUT", "/permissions/sendToGroup/connections/conn6", q("targetName", "g4"), "", nil, false},
		{"revokePermission", `{"actionName":"revokePermission","permission":"joinLeaveGroup","connectionId":"conn7"}`,
			"DELETE", "/permissions/joinLeaveGroup/connections/conn7", q(), "", nil, false},
		{"sendToGroups", `{"actionName":"sendToGroups","groups":["m1","m2"],"data":{"multi":"groups"}}`,
			"POST", "/:send", q("filter", "'m1' in groups or 'm2' in groups"), "application/json", []byte(`{"multi":"groups"}`), false},
		{"sendToUsers", `{"actionName":"sendToUsers","userIds":["x","o'k"],"data":"to users","ttl":10}`,
			"POST", "/:send", q("filter", "userId in ('x','o''k')", "messageTtlSeconds", "10"), "text/plain", []byte("to users"), false},
	}
}

// withHub adds "hub" to an envelope object.
func withHub(envelope, hub string) []byte {
	return []byte(`{"hub":"` + hub + `",` + strings.TrimPrefix(envelope, "{"))
}

// TestEveryActionFromEverySource publishes every action through core NATS,
// JetStream and Kafka (one hub per source) into one bridge and compares the
// REST requests the recording server received with the expected ones.
func TestEveryActionFromEverySource(t *testing.T) {
	t.Parallel()
	forEachNATS(t, func(t *testing.T, natsURL string) {
		rec := newRecorder(t)
		nc, js := connectNATS(t, natsURL)
		n := newJSNames(t, js)
		embedded := !strings.Contains(t.Name(), "NATS_URL")

		sources := yamlJSSource("js", natsURL, n, "") + fmt.Sprintf(`  - name: core
    type: nats
    url: %s
    subjects: ["%s.>"]
    queue: e2e-%s
`, natsURL, n.coreSubject, n.id)
		hubs := map[string]string{"jetstream": "jsHub", "nats": "natsHub"}
		var brokers []string
		if embedded { // Kafka has no external variant
			brokers = startKafka(t, kafkaCmds)
			sources += yamlKafkaSource("kafka", brokers, kafkaCmds, "e2e-actions")
			hubs["kafka"] = "kafkaHub"
		}
		br := startBridge(t, yamlWPS("")+"sources:\n"+sources+yamlJSDLQ(natsURL, n), envFor(rec, accessKey))
		br.waitReady(t) // core NATS is at-most-once: subscribe before publishing

		cases := actionCases()
		var jsMsgs []*nats.Msg
		var recs []*kgo.Record
		for _, c := range cases {
			jsMsgs = append(jsMsgs, &nats.Msg{Subject: n.subject + "." + c.name, Data: withHub(c.envelope, hubs["jetstream"])})
			if err := nc.Publish(n.coreSubject+"."+c.name, withHub(c.envelope, hubs["nats"])); err != nil {
				t.Fatalf("nats publish: %v", err)
			}
			recs = append(recs, &kgo.Record{Topic: kafkaCmds, Key: []byte(c.name), Value: withHub(c.envelope, hubs["kafka"])})
		}
		if err := nc.Flush(); err != nil {
			t.Fatalf("flush: %v", err)
		}
		jsPublish(t, js, jsMsgs...)
		if embedded {
			kafkaProduce(t, kafkaClient(t, brokers), recs...)
		}

		want := len(cases) * len(hubs)
		rec.wait(t, 60*time.Second, "every action delivered", func(s recState) bool { return len(s.reqs) >= want })
		reqs, _ := rec.snapshot()

		for src, hub := range hubs {
			t.Run(src, func(t *testing.T) {
				var got []request
				for _, r := range reqs {
					if strings.HasPrefix(r.Path, "/api/hubs/"+hub+"/") {
						got = append(got, r)
					}
				}
				for _, c := range cases {
					t.Run(c.name, func(t *testing.T) {
						i := slices.IndexFunc(got, func(r request) bool { return matches(c, hub, r) == "" })
						if i < 0 {
							t.Errorf("no request matches %s %s%s ?%s (%s) %q; closest differences:\n%s",
								c.method, "/api/hubs/"+hub, c.path, c.query.Encode(), c.ctype, c.body, closest(c, hub, got))
							return
						}
						got = slices.Delete(got, i, i+1)
					})
				}
				for _, r := range got {
					t.Errorf("unexpected request %s %s?%s (%d)", r.Method, r.Path, r.Query, r.Status)
				}
			})
		}
		if dl := jsDLQ(t, js, n.dlqStream); len(dl) != 0 {
			t.Errorf("%d messages dead-lettered, want 0: first error %q", len(dl), dl[0].Headers["wps-bridge-error"])
		}
	})
}

// matches returns "" when r is the request c expects on hub, else why not.
func matches(c actionCase, hub string, r request) string {
	if r.Method != c.method {
		return "method " + r.Method
	}
	if want := "/api/hubs/" + hub + c.path; r.Path != want {
		return "path " + r.Path
	}
	q, err := url.ParseQuery(r.Query)
	if err != nil {
		return "query: " + err.Error()
	}
	if !strings.HasPrefix(r.Query, "api-version="+apiVer) {
		return "query does not start with api-version: " + r.Query
	}
	q.Del("api-version")
	if len(q) != 0 || len(c.query) != 0 {
		if !reflect.DeepEqual(q, c.query) {
			return "query " + r.Query
		}
	}
	mediaType, _, _ := strings.Cut(r.ContentType, ";")
	if c.ctype != "" && mediaType != c.ctype {
		return "content type " + r.ContentType
	}
	if c.ctype == "" && len(r.Body) != 0 {
		return fmt.Sprintf("body %q on an operation without one", r.Body)
	}
	if c.jsonBody {
		var a, b any
		if json.Unmarshal(r.Body, &a) != nil || json.Unmarshal(c.body, &b) != nil || !reflect.DeepEqual(a, b) {
			return fmt.Sprintf("body %s", r.Body)
		}
	} else if !bytes.Equal(r.Body, c.body) {
		return fmt.Sprintf("body %q", r.Body)
	}
	if r.Status >= 300 {
		return fmt.Sprintf("answered %d", r.Status)
	}
	return ""
}

// closest lists why the requests with c's method and path did not match.
func closest(c actionCase, hub string, got []request) string {
	var b strings.Builder
	for _, r := range got {
		if r.Method == c.method || r.Path == "/api/hubs/"+hub+c.path {
			fmt.Fprintf(&b, "  %s %s?%s: %s\n", r.Method, r.Path, r.Query, matches(c, hub, r))
		}
	}
	return b.String()
}
