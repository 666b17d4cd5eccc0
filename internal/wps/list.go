package wps

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

type memberPage struct {
	Value    []GroupMember `json:"value"`
	NextLink string        `json:"nextLink"`
}

// ListConnectionsInGroup iterates over the connections in group (GET
// /api/hubs/{hub}/groups/{group}/connections, 200), fetching pages lazily and
// following each page's nextLink the way the Python SDK does: the nextLink's
// path and query are requested against this client's endpoint with
// api-version replaced by the client's. o may be nil; o.Top caps the total.
// On failure the iterator yields one non-nil error and stops. Stopping the
// loop early stops paging.
func (h *HubClient) ListConnectionsInGroup(ctx context.Context, group string, o *ListOptions) iter.Seq2[GroupMember, error] {
	const op = "listConnectionsInGroup"
	return func(yield func(GroupMember, error) bool) {
		var top int
		err := checkGroup(op, "group", group)
		if err == nil && o != nil {
			err = checkList(op, o)
			top = o.Top
		}
		if err != nil {
			yield(GroupMember{}, err)
			return
		}
		u := h.c.endPath(h.c.newURL(h.path).lit("/groups/").seg(group).lit("/connections"))
		if o != nil && o.MaxPageSize > 0 {
			u.lit("&maxpagesize=").lit(strconv.Itoa(o.MaxPageSize))
		}
		if top > 0 {
			u.lit("&top=").lit(strconv.Itoa(top))
		}
		aud, target := h.c.finish(u)
		seen := 0
		for {
			var page memberPage
			if _, err := h.c.doURL(ctx, op, http.MethodGet, aud, target, nil, "", &page, http.StatusOK, 0); err != nil {
				yield(GroupMember{}, err)
				return
			}
			for _, m := range page.Value {
				if top > 0 && seen >= top {
					return
				}
				seen++
				if !yield(m, nil) {
					return
				}
			}
			if page.NextLink == "" || (top > 0 && seen >= top) {
				return
			}
			nextAud, nextTarget, err := h.c.nextPageURL(op, page.NextLink)
			if err == nil && nextAud == aud {
				err = fmt.Errorf("wps: %s: nextLink repeats the current page", op)
			}
			if err != nil {
				yield(GroupMember{}, err)
				return
			}
			aud, target = nextAud, nextTarget
		}
	}
}

func checkList(op string, o *ListOptions) error {
	if o.MaxPageSize < 0 || o.MaxPageSize > maxPageSizeCap {
		return &ValidationError{Op: op, Field: "maxPageSize", Reason: "must be between 1 and 200 (0 = service default)"}
	}
	if o.Top < 0 {
		return &ValidationError{Op: op, Field: "top", Reason: "must be at least 1 (0 = no limit)"}
	}
	return nil
}

// nextPageURL turns the service's absolute nextLink into this client's
// (aud, target) pair: its escaped path, then api-version, then its other
// query parameters in order, each value re-encoded.
func (c *Client) nextPageURL(op, nextLink string) (aud, target string, err error) {
	nl, err := url.Parse(nextLink)
	if err != nil {
		return "", "", fmt.Errorf("wps: %s: bad nextLink: %w", op, err)
	}
	path := nl.EscapedPath()
	if !strings.HasPrefix(path, "/api/hubs/") {
		return "", "", fmt.Errorf("wps: %s: nextLink path is outside /api/hubs/", op)
	}
	u := c.endPath(c.newURL("").lit(path))
	for kv := range strings.SplitSeq(nl.RawQuery, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		key, err1 := url.QueryUnescape(k)
		val, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return "", "", fmt.Errorf("wps: %s: nextLink has a malformed query", op)
		}
		if strings.EqualFold(key, "api-version") {
			continue
		}
		u.b = append(u.b, '&')
		u.b = encodeURIComponent(u.b, key)
		u.b = append(u.b, '=')
		u.b = encodeURIComponent(u.b, val)
	}
	aud, target = c.finish(u)
	return aud, target, nil
}
