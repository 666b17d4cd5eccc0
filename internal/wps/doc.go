// Package wps is the bridge's Azure Web PubSub REST client: every data-plane
// operation of api-version 2024-12-01 (sends, group and user membership,
// closes, exists checks, permissions, paged group listing, client tokens,
// service health), signed with the hub's access key or a Microsoft Entra ID
// credential. It knows nothing about brokers, codecs or the router.
//
// # Use
//
//	c, err := wps.NewClientFromConnectionString(os.Getenv("WEBPUBSUB_CONNECTION_STRING"),
//		wps.WithMaxConnsPerHost(64), wps.WithTimeout(10*time.Second))
//	if err != nil { ... }
//	hub, err := c.Hub("chat") // validated once, then cached
//	if err != nil { ... }
//	err = hub.SendToGroup(ctx, "room42", []byte(`{"hi":1}`), wps.ContentJSON,
//		&wps.SendOptions{TTL: 30})
//
// Use NewClient(endpoint, WithTokenCredential(cred)) for Entra ID (scope
// https://webpubsub.azure.com/.default), and WithReverseProxy to send requests
// through API Management while tokens keep naming the service URL.
//
// A Client and its HubClients are safe for concurrent use; share one Client
// per endpoint. Every call blocks until the service answers, the per-request
// timeout (WithTimeout, default 10s) fires, or ctx ends. The client never
// retries: that is the caller's policy (see Classify).
//
// # Wire details
//
// Path segments and query values are percent-encoded like JavaScript's
// encodeURIComponent; array parameters repeat their key; api-version comes
// first in the query. Access-key requests carry an HS256 JWT (key = the UTF-8
// bytes of the access key) whose claims are exactly aud (the full request URL
// including the query), iat and exp (+1h). Tokens are cached per aud and
// re-signed 5 minutes before expiry, so a hot path signs once per distinct URL;
// the cache holds at most about 10,000 entries. The caller's trace context is
// injected into each request with the global OpenTelemetry propagator.
//
// # Errors
//
// Arguments that break the service's rules (hub pattern, empty ids, "." and
// ".." segments, group length and line breaks, ttl outside 0..300, unknown
// permission, page sizes, token lifetime under 1 minute) fail with a
// *ValidationError (errors.Is(err, ErrValidation)) before any network call.
// A response other than the operation's exact success code (202 sends, 200
// add/grant, 204 remove/revoke/close, 200/404 exists) is a *StatusError with
// the status, the x-ms-error-code (or body code), the message and a parsed
// Retry-After. Error strings never contain the access key, a JWT or the
// Authorization header.
//
// Classify sorts any error into one class, which drives the router:
//
//   - ClassTransient: network failures, timeouts, 408, 429 and 5xx, and any
//     error the package does not recognise. The router retries with
//     exponential backoff and jitter (honouring RetryAfter) while consumption
//     pauses, and dead-letters only when its retry budget is spent.
//   - ClassSystemic: 401, 403 and Entra ID credential failures: the key or
//     identity is wrong for this hub. The router stops consuming, reports
//     not-ready and keeps retrying slowly; it never dead-letters for these.
//   - ClassInvalid: validation errors and every other status (400, 404, 409,
//     413, unexpected 2xx/3xx). Retrying cannot help: the router sends the
//     message to the dead letter at once.
//
// IsRetriable(err) is Classify(err) == ClassTransient.
package wps
