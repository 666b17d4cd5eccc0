package codec

import (
	"strconv"
	"strings"

	"github.com/wps-bridge/bridge/internal/source"
)

// headerValues holds the headers the codec reads, found in one pass without
// allocating. The first occurrence of a name wins, as in source.Headers.Get.
type headerValues struct {
	v           [fieldCount]string
	has         [fieldCount]bool
	contentType string
	traceParent string
	hasCT       bool
	hasTP       bool
}

func (hv *headerValues) scan(hs source.Headers) {
	for i := range hs {
		k := hs[i].Key
		switch {
		case len(k) > 4 && strings.EqualFold(k[:4], "wps-"):
			for f := fAction; f < fieldCount; f++ {
				if f != fData && !hv.has[f] && strings.EqualFold(k, headerNames[f]) {
					hv.v[f], hv.has[f] = hs[i].Value, true
					break
				}
			}
		case !hv.hasCT && strings.EqualFold(k, "content-type"):
			hv.contentType, hv.hasCT = hs[i].Value, true
		case !hv.hasTP && strings.EqualFold(k, "traceparent"):
			hv.traceParent, hv.hasTP = hs[i].Value, true
		}
	}
}

// contentDataType maps a Content-Type media type (parameters ignored) to a
// data type; other media types are ignored.
func contentDataType(ct string) (string, bool) {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	switch {
	case strings.EqualFold(ct, "application/json"):
		return "json", true
	case strings.EqualFold(ct, "text/plain"):
		return "text", true
	case strings.EqualFold(ct, "application/octet-stream"):
		return "binary", true
	}
	return "", false
}

// fromHeaders fills the draft of header mode (and raw routes): the wps-*
// headers give the fields and the body is the payload.
func (dr *draft) fromHeaders(hv *headerValues, body []byte) *DecodeError {
	for f := range dr.origin {
		dr.origin[f] = fromHeader
	}
	dr.rawMode, dr.payload = true, body
	dr.actionName = hv.v[fAction]
	if hv.has[fAction] && dr.actionName == "" {
		return dr.fail(fAction, "must not be empty")
	}
	dr.hub = hv.v[fHub]
	dr.id = hv.v[fID]
	dr.group = hv.v[fGroup]
	dr.userID = hv.v[fUserID]
	dr.connID = hv.v[fConnectionID]
	dr.filter = hv.v[fFilter]
	dr.reason = hv.v[fReason]
	dr.permission = hv.v[fPermission]
	dr.targetName = hv.v[fTargetName]
	dr.groups = splitList(hv.v[fGroups])
	dr.userIDs = splitList(hv.v[fUserIDs])
	dr.excluded = splitList(hv.v[fExcluded])
	if s := strings.TrimSpace(hv.v[fTTL]); s != "" {
		n, err := strconv.Atoi(s)
		switch {
		case err != nil:
			return dr.fail(fTTL, "must be an integer 0..300, got "+strconv.Quote(hv.v[fTTL]))
		case n < 0 || n > MaxTTL:
			return dr.fail(fTTL, "must be 0..300, got "+s)
		}
		dr.ttl, dr.ttlSet = n, true
	}
	if s := strings.TrimSpace(hv.v[fExpiresAt]); s != "" {
		t, err := parseTime(s)
		if err != nil {
			return dr.fail(fExpiresAt, "must be an RFC 3339 time, got "+strconv.Quote(s))
		}
		dr.expiresAt = t
	}
	if dt, ok := contentDataType(hv.contentType); hv.hasCT && ok {
		dr.dataType = dt
	} else {
		dr.dataType = strings.TrimSpace(hv.v[fDataType])
	}
	return nil
}

// splitList splits a comma-separated header value, trimming spaces around
// entries. An empty value gives nil; empty entries are kept (and refused by
// validation, naming their position).
func splitList(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	out := make([]string, 0, strings.Count(s, ",")+1)
	for part := range strings.SplitSeq(s, ",") {
		out = append(out, strings.TrimSpace(part))
	}
	return out
}
