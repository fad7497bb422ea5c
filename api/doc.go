// Package api is the contract of quorumkv's HTTP client API: header names,
// error codes and the JSON bodies that node serves and client decodes. It
// holds types and constants only, so the client does not import the server
// and the two cannot drift apart.
package api
