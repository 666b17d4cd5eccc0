package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Why not yaml.Decoder with KnownFields(true): yaml.v3 reports unknown keys and
// type errors by line number only, Node.Decode ignores KnownFields, and the
// environment must be expanded per scalar (after parsing, so a value can never
// inject YAML) while remembering which secrets came from a ${VAR}. So the
// document is parsed into a yaml.Node tree and this strict decoder walks it
// against the Go types, with the path at hand for every error.

var durationType = reflect.TypeFor[time.Duration]()

type decoder struct {
	lookup func(string) (string, bool)
	errs   []*FieldError
}

// decodeYAML parses data and decodes it into cfg. It returns the problems found
// per path, or an error when data is not YAML at all.
func decodeYAML(data []byte, cfg *Config, lookup func(string) (string, bool)) ([]*FieldError, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse config: %w", err)
	}
	d := &decoder{lookup: lookup}
	if len(doc.Content) > 0 {
		d.value(doc.Content[0], reflect.ValueOf(cfg).Elem(), "", false)
	}
	return d.errs, nil
}

func (d *decoder) fail(path, format string, args ...any) {
	d.errs = append(d.errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return "a scalar"
	}
}

func (d *decoder) value(n *yaml.Node, v reflect.Value, path string, secret bool) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if isNull(n) {
		return // keep the zero value; defaults fill it in
	}
	switch {
	case v.Type() == durationType:
		d.duration(n, v, path)
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(n, v.Elem(), path, secret)
	case v.Kind() == reflect.Struct:
		d.mapping(n, v, path)
	case v.Kind() == reflect.Slice:
		d.sequence(n, v, path)
	default:
		d.scalar(n, v, path, secret)
	}
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(path, "must be a mapping, got %s", kindName(n))
		return
	}
	seen := make(map[string]bool, len(n.Content)/2)
	d.mappingInto(n, v, path, seen)
}

func (d *decoder) mappingInto(n *yaml.Node, v reflect.Value, path string, seen map[string]bool) {
	t := v.Type()
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if key.Kind != yaml.ScalarNode {
			d.fail(path, "keys must be strings, got %s", kindName(key))
			continue
		}
		if key.Value == "<<" && key.Style == 0 {
			merges = append(merges, val) // applied last: explicit keys win
			continue
		}
		name := key.Value
		fieldPath := join(path, name)
		idx, ok := fieldIndex(t, name)
		if !ok {
			msg := "unknown key"
			if hint, ok := closestField(t, name); ok {
				msg += fmt.Sprintf(" (did you mean %q?)", hint)
			}
			d.fail(fieldPath, "%s", msg)
			continue
		}
		if seen[name] {
			d.fail(fieldPath, "duplicate key")
			continue
		}
		seen[name] = true
		d.value(val, v.Field(idx), fieldPath, t.Field(idx).Tag.Get("secret") == "true")
	}
	for _, m := range merges {
		d.merge(m, v, path, seen)
	}
}

// merge applies a YAML merge key (<<: *anchor); explicit keys win.
func (d *decoder) merge(n *yaml.Node, v reflect.Value, path string, seen map[string]bool) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		sub := &yaml.Node{Kind: yaml.MappingNode}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if !seen[n.Content[i].Value] {
				sub.Content = append(sub.Content, n.Content[i], n.Content[i+1])
			}
		}
		d.mappingInto(sub, v, path, seen)
	case yaml.SequenceNode:
		for _, m := range n.Content {
			d.merge(m, v, path, seen)
		}
	default:
		d.fail(path, "merge key << needs a mapping or a list of mappings")
	}
}

func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(path, "must be a list, got %s", kindName(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.value(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i), false)
	}
	v.Set(s)
}

// text expands a scalar and enforces the secrets rule.
func (d *decoder) text(n *yaml.Node, path string, secret bool) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.fail(path, "must be a single value, got %s", kindName(n))
		return "", false
	}
	s, referenced, err := expand(n.Value, d.lookup)
	if err != nil {
		d.fail(path, "%v", err)
		return "", false
	}
	if secret && n.Value != "" && !referenced {
		// Reported, but kept so that validation does not add consequential
		// errors; a config with problems is never returned.
		d.fail(path, "secrets may not be written in the file: use ${ENV_VAR} or the matching *File key")
	}
	return s, true
}

func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string, secret bool) {
	s, ok := d.text(n, path, secret)
	if !ok {
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		switch strings.ToLower(s) {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			d.fail(path, "must be true or false, got %q", s)
		}
	case reflect.Int:
		i, err := strconv.Atoi(s)
		if err != nil {
			d.fail(path, "must be an integer, got %q", s)
			return
		}
		v.SetInt(int64(i))
	default:
		d.fail(path, "internal error: no decoder for %s", v.Type()) // a schema bug, caught by tests
	}
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	s, ok := d.text(n, path, false)
	if !ok {
		return
	}
	if _, err := strconv.Atoi(s); err == nil && s != "0" {
		d.fail(path, "duration %q needs a unit, e.g. \"%ss\" or \"%sms\"", s, s, s)
		return
	}
	dur, err := time.ParseDuration(s)
	if err != nil {
		d.fail(path, "invalid duration %q: use a number with a unit, e.g. \"100ms\", \"10s\", \"5m\"", s)
		return
	}
	v.SetInt(int64(dur))
}

// fieldIndex finds the struct field whose yaml tag is name.
func fieldIndex(t reflect.Type, name string) (int, bool) {
	for i := range t.NumField() {
		if yamlName(t.Field(i)) == name {
			return i, true
		}
	}
	return 0, false
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

// closestField suggests a key that differs only in case or by one edit.
func closestField(t reflect.Type, name string) (string, bool) {
	for i := range t.NumField() {
		if n := yamlName(t.Field(i)); strings.EqualFold(n, name) || oneEdit(strings.ToLower(n), strings.ToLower(name)) {
			return n, true
		}
	}
	return "", false
}

// oneEdit reports whether a and b differ by exactly one insertion, deletion or
// substitution.
func oneEdit(a, b string) bool {
	if len(a) < len(b) {
		a, b = b, a
	}
	if len(a)-len(b) > 1 || a == b {
		return false
	}
	i := 0
	for i < len(b) && a[i] == b[i] {
		i++
	}
	if len(a) == len(b) {
		return a[i+1:] == b[i+1:]
	}
	return a[i+1:] == b[i:]
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
