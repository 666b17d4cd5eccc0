package wps

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// ConnectionString is a parsed Web PubSub connection string
// "Endpoint=https://<name>.webpubsub.azure.com;AccessKey=<key>;Version=1.0;[Port=<n>;]".
type ConnectionString struct {
	// Endpoint is the service URL with "https://" added when no scheme was
	// given, any trailing "/" removed, and Port (when set) applied.
	Endpoint string
	// AccessKey is the key, exactly as written (not base64-decoded).
	AccessKey string
	// Port is the raw Port value, or "".
	Port string
	// Version is the raw Version value, or "".
	Version string
}

// errConnectionString is wrapped by ParseConnectionString errors; it wraps
// ErrInvalidOption.
var errConnectionString = fmt.Errorf("%w: connection string", ErrInvalidOption)

// ParseConnectionString parses s. Segments are separated by ';', keys are
// case-insensitive, values are kept verbatim, the first of duplicate keys
// wins (as in the Python SDK) and unknown keys are ignored. Endpoint and
// AccessKey are required; Port, when present, replaces the endpoint's port.
// Errors never contain the access key.
func ParseConnectionString(s string) (ConnectionString, error) {
	var cs ConnectionString
	var haveEndpoint, haveKey, havePort, haveVersion bool
	for i, seg := range strings.Split(s, ";") {
		if seg == "" {
			continue
		}
		k, v, ok := strings.Cut(seg, "=")
		if !ok {
			return ConnectionString{}, fmt.Errorf("%w: segment %d has no '='", errConnectionString, i+1)
		}
		switch strings.ToLower(k) {
		case "endpoint":
			if !haveEndpoint {
				cs.Endpoint, haveEndpoint = v, true
			}
		case "accesskey":
			if !haveKey {
				cs.AccessKey, haveKey = v, true
			}
		case "port":
			if !havePort {
				cs.Port, havePort = v, true
			}
		case "version":
			if !haveVersion {
				cs.Version, haveVersion = v, true
			}
		}
	}
	if cs.Endpoint == "" {
		return ConnectionString{}, fmt.Errorf("%w: missing Endpoint", errConnectionString)
	}
	if cs.AccessKey == "" {
		return ConnectionString{}, fmt.Errorf("%w: missing AccessKey", errConnectionString)
	}
	ep := cs.Endpoint
	if !hasPrefixFold(ep, "http://") && !hasPrefixFold(ep, "https://") {
		if strings.Contains(ep, "://") {
			return ConnectionString{}, fmt.Errorf("%w: Endpoint must be an http or https URL", errConnectionString)
		}
		ep = "https://" + ep
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" || u.Opaque != "" || u.User != nil {
		return ConnectionString{}, fmt.Errorf("%w: Endpoint is not an http(s) URL with a host", errConnectionString)
	}
	if cs.Port != "" {
		n, err := strconv.Atoi(cs.Port)
		if err != nil || n < 1 || n > 65535 {
			return ConnectionString{}, fmt.Errorf("%w: Port must be a number in 1..65535", errConnectionString)
		}
		u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(n))
	}
	u.RawQuery, u.Fragment = "", ""
	cs.Endpoint = strings.TrimRight(u.String(), "/")
	return cs, nil
}
