package router

import (
	"strings"

	"github.com/wps-bridge/bridge/internal/codec"
)

// isMulticast reports the actions the router compiles into filtered sendToAll
// calls.
func isMulticast(a codec.Action) bool { return a == codec.SendToGroups || a == codec.SendToUsers }

// expand returns cmds with every multicast command replaced by its compiled
// sendToAll commands (in place of it, so order is kept). It returns cmds
// itself when there is nothing to compile.
func expand(cmds []codec.Command, chunk int) ([]codec.Command, error) {
	n, multicast := 0, false
	for i := range cmds {
		switch c := &cmds[i]; c.Action {
		case codec.SendToGroups:
			multicast = true
			n += chunks(len(c.Groups), chunk)
		case codec.SendToUsers:
			multicast = true
			n += chunks(len(c.UserIDs), chunk)
		default:
			n++
		}
	}
	if !multicast {
		return cmds, nil
	}
	out := make([]codec.Command, 0, n)
	for i := range cmds {
		c := &cmds[i]
		if !isMulticast(c.Action) {
			out = append(out, *c)
			continue
		}
		compiled, err := compileMulticast(c, chunk, indexOf(i, len(cmds)))
		if err != nil {
			return nil, err
		}
		out = append(out, compiled...)
	}
	return out, nil
}

func chunks(n, size int) int { return (n + size - 1) / size }

// indexOf is the DecodeError index of command i of n: -1 for a lone command.
func indexOf(i, n int) int {
	if n == 1 {
		return -1
	}
	return i
}

// compileMulticast turns a sendToGroups/sendToUsers command into sendToAll
// commands with a filter naming at most chunk targets each:
// `'g1' in groups or 'g2' in groups` and `userId in ('a','b')`, quotes doubled,
// AND-ed with the command's own filter as `(own) and (targets)`. The compiled
// commands keep the ordering key, payload and options of the original.
func compileMulticast(c *codec.Command, chunk, index int) ([]codec.Command, error) {
	targets, field := c.Groups, "groups"
	if c.Action == codec.SendToUsers {
		targets, field = c.UserIDs, "userIds"
	}
	if len(targets) == 0 {
		return nil, &codec.DecodeError{Index: index, Field: field, Reason: "must not be empty"}
	}
	out := make([]codec.Command, 0, chunks(len(targets), chunk))
	var b strings.Builder
	for start := 0; start < len(targets); start += chunk {
		part := targets[start:min(start+chunk, len(targets))]
		b.Reset()
		if c.Filter != "" {
			b.WriteByte('(')
			b.WriteString(c.Filter)
			b.WriteString(") and (")
		}
		if c.Action == codec.SendToGroups {
			for i, g := range part {
				if i > 0 {
					b.WriteString(" or ")
				}
				writeODataString(&b, g)
				b.WriteString(" in groups")
			}
		} else {
			b.WriteString("userId in (")
			for i, u := range part {
				if i > 0 {
					b.WriteByte(',')
				}
				writeODataString(&b, u)
			}
			b.WriteByte(')')
		}
		if c.Filter != "" {
			b.WriteByte(')')
		}
		sc := *c
		sc.Action = codec.SendToAll
		sc.Groups, sc.UserIDs = nil, nil
		sc.Filter = b.String()
		out = append(out, sc)
	}
	return out, nil
}

// writeODataString writes s as an OData string literal: quoted, with every
// single quote doubled.
func writeODataString(b *strings.Builder, s string) {
	b.WriteByte('\'')
	for {
		i := strings.IndexByte(s, '\'')
		if i < 0 {
			break
		}
		b.WriteString(s[:i+1])
		b.WriteByte('\'')
		s = s[i+1:]
	}
	b.WriteString(s)
	b.WriteByte('\'')
}
