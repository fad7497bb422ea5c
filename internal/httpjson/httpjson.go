// Package httpjson writes the HTTP API's JSON error bodies (api.Error) for
// the middleware packages (auth, httpguard) that answer before a request
// reaches node's handlers, so every error a client sees has one shape.
package httpjson

import (
	"encoding/json"
	"net/http"

	"github.com/quorumkv/quorumkv/api"
)

// WriteError answers status with the body {"error": msg, "code": code}.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(api.Error{Error: msg, Code: code})
}
