package api

// CodeNotReady is the error code of a /readyz answer of 503.
const CodeNotReady = "not_ready"

// Ready is the body of /readyz.
type Ready struct {
	// Status is "ready" or "not ready".
	Status string `json:"status"`
	Node   string `json:"node"`
	// Reasons lists why the node is not ready (empty when it is).
	Reasons []string `json:"reasons,omitempty"`
	// Error and Code follow the API's error convention on a 503.
	Error string `json:"error,omitempty"`
	Code  string `json:"code,omitempty"`
}
