// Package httpguard defends a node's HTTP API, and its RESP port, against
// attacks launched from a web browser: a page on any site can make the
// browser of someone on the node's network (or on the node's own machine)
// send requests to it.
//
// Guard wraps the HTTP handler and, in this order:
//
//   - sets X-Content-Type-Options: nosniff, Content-Security-Policy: sandbox
//     and Cross-Origin-Resource-Policy: same-origin on every response, so a
//     stored value is never run as a page or script of the node's origin;
//   - refuses (403) a Host that is not a loopback name, an IP address, a
//     host of the listen or advertised addresses, or in AllowedHosts: DNS
//     rebinding, where an attacker's name resolves to the node;
//   - refuses (400) a query string holding ';', which net/http drops
//     together with the parameters around it (?w=3;x=1 lost w=3);
//   - refuses (403) a request with an Origin that is neither the request's
//     own nor in CORSOrigins, or without Origin but marked cross-site or
//     same-site by Sec-Fetch-Site: cross-site request forgery, such as a
//     text/plain POST from a page; answers CORS preflights of the allowed
//     origins, and adds CORS headers to their requests.
//
// IsHTTP recognises an HTTP request sent to the RESP port (a browser's
// cross-protocol attack: the body's lines would run as commands), as
// Redis's "possible SECURITY ATTACK" check does.
//
// Guard is immutable after New and safe for concurrent use; the package
// does no logging (the caller logs the refusals it wants from the status).
package httpguard
