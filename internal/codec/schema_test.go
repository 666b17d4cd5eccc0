package codec

import (
	"github.com/wps-bridge/bridge/internal/wpsname"

	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/wps-bridge/bridge/internal/source"
)

var update = flag.Bool("update", false, "rewrite schema/envelope-v1.schema.json from the action table")

type obj = map[string]any

const (
	hubPattern = "^[A-Za-z][A-Za-z0-9_`,.\\[\\]]{0,127}$"
	// groupPattern: no line breaks, and at least one character that is not
	// unicode.IsSpace (spelled out so that Go RE2 and ECMA 262 agree).
	groupPattern = "^[^\\n\\r\u2028\u2029]*[^\\t\\n\\v\\f\\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\\n\\r\u2028\u2029]*$"
)

// actionSpellings lists the spellings the schema accepts for a: the canonical
// name, its PascalCase form and the Functions aliases. (The decoder also
// ignores case, '_' and '-', which a schema enum cannot say.)
func actionSpellings(a Action) []any {
	name := a.String()
	out := []any{name, strings.ToUpper(name[:1]) + name[1:]}
	var aliases []string
	for alias, b := range functionsAliases {
		if b == a {
			aliases = append(aliases, alias)
		}
	}
	slices.Sort(aliases)
	for _, alias := range aliases {
		out = append(out, alias, strings.ToUpper(alias[:1])+alias[1:])
	}
	return out
}

// actionIs matches an envelope whose actionName (or op) names one of names.
func actionIs(names []any) obj {
	return obj{"anyOf": []any{
		obj{"required": []any{"actionName"}, "properties": obj{"actionName": obj{"enum": names}}},
		obj{"required": []any{"op"}, "properties": obj{"op": obj{"enum": names}}},
	}}
}

// buildSchema generates the envelope v1 schema from specs.
func buildSchema() obj {
	empty := []any{nil, ""}
	var all []any
	for _, a := range Actions() {
		all = append(all, actionSpellings(a)...)
	}
	properties := obj{
		"actionName": obj{"type": []any{"string", "null"}, "description": "The operation, case-insensitive (alias: op)."},
		"op":         obj{"type": []any{"string", "null"}, "description": "Alias of actionName."},
		"hub": obj{"anyOf": []any{obj{"enum": empty}, obj{"type": "string", "pattern": hubPattern}},
			"description": "Target hub; default from the route or webpubsub.hub."},
		"data":              obj{"description": "Payload of send* actions."},
		"dataType":          obj{"enum": []any{nil, "", "json", "text", "binary"}, "description": "json (default unless data is a string), text (default for a string) or binary (data is standard base64)."},
		"group":             obj{"anyOf": []any{obj{"enum": empty}, obj{"$ref": "#/$defs/group"}}},
		"userId":            obj{"anyOf": []any{obj{"enum": empty}, obj{"$ref": "#/$defs/segment"}}},
		"connectionId":      obj{"anyOf": []any{obj{"enum": empty}, obj{"$ref": "#/$defs/segment"}}},
		"groups":            obj{"type": []any{"array", "null"}, "items": obj{"$ref": "#/$defs/group"}},
		"userIds":           obj{"type": []any{"array", "null"}, "items": obj{"$ref": "#/$defs/segment"}},
		"excluded":          obj{"type": []any{"array", "null"}, "items": obj{"type": "string", "minLength": 1}, "description": "Connection ids excluded from a send or close."},
		"filter":            obj{"type": []any{"string", "null"}, "description": "OData filter."},
		"ttl":               obj{"$ref": "#/$defs/ttl", "description": "messageTtlSeconds, 0..300 (alias: messageTtlSeconds)."},
		"messageTtlSeconds": obj{"$ref": "#/$defs/ttl"},
		"reason":            obj{"type": []any{"string", "null"}, "description": "Close reason."},
		"permission":        obj{"enum": []any{nil, "", PermissionSendToGroup, PermissionJoinLeaveGroup}},
		"targetName":        obj{"anyOf": []any{obj{"enum": empty}, obj{"$ref": "#/$defs/group"}}, "description": "The group a permission applies to."},
		"id":                obj{"type": []any{"string", "null"}, "description": "Producer's id, logged and carried into dead letters."},
		"expiresAt": obj{"anyOf": []any{obj{"enum": empty}, obj{"type": "string", "format": "date-time"}},
			"description": "RFC 3339 time past which the command is dropped."},
	}
	rules := []any{
		obj{"not": obj{"required": []any{"actionName", "op"}, "properties": obj{
			"actionName": obj{"type": "string", "minLength": 1}, "op": obj{"type": "string", "minLength": 1}}}},
		obj{"not": obj{"required": []any{"ttl", "messageTtlSeconds"}, "properties": obj{
			"ttl": obj{"not": obj{"type": "null"}}, "messageTtlSeconds": obj{"not": obj{"type": "null"}}}}},
		actionIs(all),
		ifDataType("text", obj{"type": "string"}),
		ifDataType("binary", obj{"type": "string", "contentEncoding": "base64"}),
		ifDataType("json", obj{"if": obj{"type": "string"}, "then": obj{"contentMediaType": "application/json"}}),
	}
	for _, a := range Actions() {
		sp := specs[a]
		then := obj{}
		props := obj{}
		var required []any
		for f := fGroup; f < fieldCount; f++ {
			name := jsonNames[f]
			switch {
			case sp.required.has(f):
				required = append(required, name)
				switch f {
				case fData:
				case fGroups, fUserIDs:
					props[name] = obj{"type": "array", "minItems": 1}
				default:
					props[name] = obj{"type": "string", "minLength": 1}
				}
			case !sp.allowed.has(f):
				switch f {
				case fData:
					props[name] = obj{"type": "null"}
				case fGroups, fUserIDs, fExcluded:
					props[name] = obj{"maxItems": 0}
				case fTTL:
					props[name] = obj{"enum": []any{nil, 0}}
					props["messageTtlSeconds"] = obj{"enum": []any{nil, 0}}
				default:
					props[name] = obj{"enum": empty}
				}
			}
		}
		if len(required) > 0 {
			then["required"] = required
		}
		then["properties"] = props
		rules = append(rules, obj{"if": actionIs(actionSpellings(a)), "then": then})
	}
	command := obj{
		"type":       "object",
		"properties": properties,
		"allOf":      rules,
	}
	return obj{
		"$schema":     "https://json-schema.org/draft/2020-12/schema",
		"$id":         "https://github.com/wps-bridge/bridge/internal/codec/schema/envelope-v1.schema.json",
		"title":       "wps-bridge command envelope v1",
		"description": "One command object or an array of them (see docs/envelope.md). Generated from internal/codec (go test ./internal/codec -run TestSchemaUpToDate -update); do not edit.",
		"anyOf": []any{
			obj{"$ref": "#/$defs/command"},
			obj{"type": "array", "items": obj{"$ref": "#/$defs/command"}},
		},
		"$defs": obj{
			"command": command,
			"group": obj{"type": "string", "minLength": 1, "maxLength": wpsname.MaxGroupLen, "pattern": groupPattern,
				"not": obj{"enum": []any{".", ".."}}},
			"segment": obj{"type": "string", "minLength": 1, "not": obj{"enum": []any{".", ".."}}},
			"ttl":     obj{"anyOf": []any{obj{"type": "null"}, obj{"type": "integer", "minimum": 0, "maximum": MaxTTL}}},
		},
	}
}

func ifDataType(dt string, data obj) obj {
	return obj{
		"if":   obj{"required": []any{"dataType"}, "properties": obj{"dataType": obj{"const": dt}}},
		"then": obj{"properties": obj{"data": data}},
	}
}

func TestSchemaUpToDate(t *testing.T) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(buildSchema()); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("schema", "envelope-v1.schema.json")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(Schema(), buf.Bytes()) {
		t.Fatalf("%s is stale: run go test ./internal/codec -run TestSchemaUpToDate -update", path)
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema()))
	if err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	c.AssertContent()
	if err := c.AddResource("envelope-v1.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("envelope-v1.schema.json")
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	return sch
}

// TestSchemaAgreesWithDecoder checks, over testdata/corpus, that the schema
// and the decoder accept exactly the same samples, and that each sample is in
// the directory (valid/invalid) that says what both do. Rules the schema
// cannot state are kept out of the corpus and covered by unit tests instead:
// member names matched case-insensitively, action/permission/dataType values
// in other cases or with '_'/'-', the body size limit, and leap seconds in
// expiresAt (see TestDecodeEnvelopeFields).
func TestSchemaAgreesWithDecoder(t *testing.T) {
	t.Parallel()
	sch := compileSchema(t)
	dec := mustNew(t, Config{DefaultHub: "chat"})
	for _, dir := range []string{"valid", "invalid"} {
		files, err := filepath.Glob(filepath.Join("testdata", "corpus", dir, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) < 20 {
			t.Fatalf("corpus %s has only %d samples", dir, len(files))
		}
		for _, file := range files {
			t.Run(dir+"/"+filepath.Base(file), func(t *testing.T) {
				t.Parallel()
				body, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				_, decErr := dec.Decode(&source.Message{Body: body})
				var schemaErr error
				if doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(body)); err != nil {
					schemaErr = err
				} else {
					schemaErr = sch.Validate(doc)
				}
				want := dir == "valid"
				if got := decErr == nil; got != want {
					t.Errorf("decoder accepts=%v, want %v (err: %v)", got, want, decErr)
				}
				if got := schemaErr == nil; got != want {
					t.Errorf("schema accepts=%v, want %v (err: %v)", got, want, schemaErr)
				}
			})
		}
	}
}

// TestSchemaActionEnum checks that every spelling the schema lists parses and
// every action is listed.
func TestSchemaActionEnum(t *testing.T) {
	t.Parallel()
	for _, a := range Actions() {
		for _, s := range actionSpellings(a) {
			got, ok := ParseAction(s.(string))
			if !ok || got != a {
				t.Errorf("ParseAction(%q) = %v, %v; want %v", s, got, ok, a)
			}
		}
	}
	if !bytes.Contains(Schema(), []byte(`"closeClientConnection"`)) {
		t.Error("schema lacks the Functions alias closeClientConnection")
	}
}
