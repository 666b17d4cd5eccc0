package codec

import _ "embed"

//go:embed schema/envelope-v1.schema.json
var schemaJSON []byte

// Schema returns the JSON Schema (draft 2020-12) of envelope v1: one command
// object or an array of them. It is generated from the decoder's action table
// (see schema_test.go) and checked against the decoder over a test corpus.
// The returned slice is a copy.
func Schema() []byte { return append([]byte(nil), schemaJSON...) }
