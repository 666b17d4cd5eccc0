package config

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// RedactedText replaces secrets in Config.Redacted and Config.String.
const RedactedText = "REDACTED"

// Redacted returns a deep copy of c with every secret that is set replaced
// by "REDACTED", for logging.
func (c *Config) Redacted() *Config {
	out := c.clone()
	redact(reflect.ValueOf(out).Elem())
	return out
}

// String renders the redacted configuration as YAML, leaving out empty keys.
func (c *Config) String() string {
	node := encode(reflect.ValueOf(c.Redacted()).Elem())
	b, err := yaml.Marshal(node)
	if err != nil {
		return fmt.Sprintf("config: %v", err)
	}
	return string(b)
}

func (c *Config) clone() *Config {
	out := *c
	out.Sources = slices.Clone(c.Sources)
	for i := range out.Sources {
		s := &out.Sources[i]
		s.Subjects = slices.Clone(s.Subjects)
		s.Brokers = slices.Clone(s.Brokers)
		s.Topics = slices.Clone(s.Topics)
	}
	out.Routes = slices.Clone(c.Routes)
	for i := range out.Routes {
		if co := out.Routes[i].Coalesce; co != nil {
			cp := *co
			out.Routes[i].Coalesce = &cp
		}
	}
	out.DeadLetter.Brokers = slices.Clone(c.DeadLetter.Brokers)
	return &out
}

// redact overwrites, in place, every non-empty string field tagged secret.
func redact(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			redact(v.Elem())
		}
	case reflect.Slice:
		for i := range v.Len() {
			redact(v.Index(i))
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := v.Field(i)
			if t.Field(i).Tag.Get("secret") == "true" && f.Kind() == reflect.String && f.String() != "" {
				f.SetString(RedactedText)
				continue
			}
			redact(f)
		}
	}
}

// encode builds a YAML tree of v with durations as strings and zero values
// left out. It returns nil for a value that is entirely zero.
func encode(v reflect.Value) *yaml.Node {
	if v.Type() == durationType {
		if v.Int() == 0 {
			return nil
		}
		return scalarNode(time.Duration(v.Int()).String())
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return encode(v.Elem())
	case reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode}
		for i := range v.NumField() {
			if child := encode(v.Field(i)); child != nil {
				n.Content = append(n.Content, scalarNode(yamlName(v.Type().Field(i))), child)
			}
		}
		if len(n.Content) == 0 {
			return nil
		}
		return n
	case reflect.Slice:
		if v.Len() == 0 {
			return nil
		}
		n := &yaml.Node{Kind: yaml.SequenceNode}
		for i := range v.Len() {
			child := encode(v.Index(i))
			if child == nil {
				child = &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
			}
			n.Content = append(n.Content, child)
		}
		return n
	case reflect.String:
		if v.String() == "" {
			return nil
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v.String()}
	case reflect.Bool:
		if !v.Bool() {
			return nil
		}
		return scalarNode("true")
	case reflect.Int:
		if v.Int() == 0 {
			return nil
		}
		return scalarNode(strconv.FormatInt(v.Int(), 10))
	}
	return nil
}

func scalarNode(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s} }

// ReadSecret returns value when it is set, otherwise the content of file with
// trailing line breaks removed, or "" when neither is set. The error names the
// file, never its content.
func ReadSecret(value, file string) (string, error) {
	if value != "" || file == "" {
		return value, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// ResolveAccessKey returns AccessKey, or the content of AccessKeyFile.
func (w WebPubSub) ResolveAccessKey() (string, error) {
	return ReadSecret(w.AccessKey, w.AccessKeyFile)
}

// checkFiles reports every *File key (a key whose name ends in "File") that
// names a file that cannot be read.
func checkFiles(c *Config) []*FieldError {
	if c == nil {
		return nil
	}
	var errs []*FieldError
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() {
				walk(v.Elem(), path)
			}
		case reflect.Slice:
			if v.Type().Elem().Kind() == reflect.Struct {
				for i := range v.Len() {
					walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i))
				}
			}
		case reflect.Struct:
			t := v.Type()
			for i := range t.NumField() {
				name := yamlName(t.Field(i))
				f := v.Field(i)
				if strings.HasSuffix(name, "File") && f.Kind() == reflect.String && f.String() != "" {
					if fh, err := os.Open(f.String()); err != nil {
						errs = append(errs, &FieldError{Path: join(path, name), Msg: fmt.Sprintf("cannot read: %v", err)})
					} else {
						_ = fh.Close() // opened read-only to test access; nothing to flush
					}
					continue
				}
				walk(f, join(path, name))
			}
		}
	}
	walk(reflect.ValueOf(c).Elem(), "")
	return errs
}
