// Package config owns bridge.yaml: its schema, defaults, environment
// expansion and validation (design.md §4).
//
// The file is YAML. Every scalar value (never a key) may reference the
// environment as ${VAR} or ${VAR:-default} (the default applies when VAR is
// unset or empty; defaults may nest); $$ is a literal $, and a $ followed by
// anything else is kept as is, so NATS subjects such as $JS.API stay readable.
// A reference to a variable that is unset, without a default, is an error.
//
// Decoding is strict: unknown keys, duplicate keys and values of the wrong
// type are errors, and every error names its path (sources[1].topics).
// Durations are strings with a unit ("100ms", "10s"). Parse and Load report
// every problem of a file in one error, an errors.Join of *FieldError, so a
// user fixes a broken file in one round; FieldErrors extracts them.
//
// Secrets (webpubsub.connectionString, webpubsub.accessKey, auth.password,
// auth.token and sasl.password of sources and of the dead letter) may only come
// from ${VAR} expansion or from the sibling *File key (accessKeyFile,
// passwordFile, tokenFile): a literal secret in the file is an error. Secrets
// never appear in error messages; Config.Redacted and Config.String give a view
// that is safe to log.
//
// Everything here is a pure function of its inputs except Load, which reads
// the file and checks that every *File path it names is readable. A *Config is
// a plain value: safe for concurrent reads, not for concurrent writes.
package config
