// Package api is the contract of quorumkv's HTTP client API: header names,
// error codes and the JSON bodies that node serves and client decodes. It
// holds types and constants, and the two parsers of values both sides
// read (ParseTTL, FormatRemaining: ttl.go), so the client does not import
// the server and the two cannot drift apart.
package api
