// Package filter parses and evaluates the OData filter expressions that Azure Web PubSub accepts in the
// `filter` parameter of sendToAll, sendToGroup and sendToUser, and in AddToGroups/RemoveFromGroups bodies.
//
// The grammar follows the service documentation: the identifiers userId, connectionId and groups
// (case-insensitive); the operators eq ne gt lt ge le, and or not, parentheses, `x in (a, b)` and
// `'g' in groups`; string literals in single quotes (two single quotes escape one), integers, true, false and null; and the
// functions startswith, endswith, contains, indexof, length, tolower, toupper, trim, substring and concat.
// Precedence from high to low is: not, comparisons, and, or. Expressions are type-checked at parse time, so
// `not length(userId) gt 5` is rejected while `not (length(userId) gt 5)` is accepted.
//
// A parsed *Expr is immutable and safe for concurrent use.
package filter
