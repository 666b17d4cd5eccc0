package codec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzFastEnvelope checks the fast path against encoding/json: whatever
// fastEnvelope accepts, encoding/json accepts too and decodes to the same
// envelope. Seeds: the envelope corpus and inputs at the edges of the subset.
func FuzzFastEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"actionName":"sendToGroup","group":"g42","data":{"ts":1,"seq":7,"pad":"xx"}}`,
		`{"op":"sendToAll","data":"x","ttl":5,"excluded":["a","b"]}`,
		`{"actionName":"sendToUser","userId":"ü","dataType":"binary","data":"AAE=","ttl":null}`,
		`{"actionName":"sendToAll","data":null,"groups":[],"messageTtlSeconds":1e2}`,
		`{"ACTIONNAME":"sendToAll","data":1}`,
		`{"actionName":"sendToAll","actionName":"sendToGroup"}`,
		`{"actionName":"send\u0054oAll"}`,
		`{"group":null}`,
		`{"unknown":{"a":[1,2.5e-3,true,false,null,"\"\\\/\b\f\n\r\t\u00e9"]},"data":[]}`,
		`{"data":01}`, `{"data":-}`, `{"data":1.}`, `{"data":"\x"}`, `{"data":{"a" 1}}`,
		`{"data":{}} x`, `{"ttl":"5"}`, `{"ttl":[1]}`, `{"ſroup":"g"}`, `{}`, ` {"id":"a"} `,
	} {
		f.Add([]byte(s))
	}
	files, _ := filepath.Glob("testdata/corpus/*/*.json")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var fast envelope
		if !fastEnvelope(in, &fast) {
			return
		}
		var slow envelope
		if err := json.Unmarshal(in, &slow); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json: %v", in, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("decoded %q differently:\nfast %#v\nslow %#v", in, fast, slow)
		}
	})
}

// TestFastEnvelopeTakesCommonEnvelopes: the envelopes producers write take
// the fast path (a regression to the slow path would only show as cost).
func TestFastEnvelopeTakesCommonEnvelopes(t *testing.T) {
	for _, s := range []string{
		`{"actionName":"sendToGroup","group":"g42","data":{"ts":1,"seq":7,"pad":"xx"}}`,
		`{"actionName":"sendToAll","data":"hello","dataType":"text","excluded":["c1"]}`,
		`{"op":"addUserToGroup","userId":"alice","group":"room-1","hub":"chat"}`,
		`{"actionName":"sendToUser","userId":"bob","data":{"n":1},"ttl":30,"id":"m-1"}`,
	} {
		var e envelope
		if !fastEnvelope([]byte(s), &e) {
			t.Errorf("slow path for %s", s)
		}
	}
}
