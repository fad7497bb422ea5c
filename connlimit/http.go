package connlimit

import (
	"net/http"
	"time"
)

// HTTPTimeouts are the http.Server settings for the client API. Each is
// chosen so that no client can hold a connection, a goroutine or memory
// longer than its own progress justifies; see "Resource limits" in
// docs/ARCHITECTURE.md.
type HTTPTimeouts struct {
	// ReadHeaderTimeout bounds the request line and headers: a client
	// sends them at once, so a slow one is an attack (slowloris).
	ReadHeaderTimeout time.Duration
	// ReadTimeout is 0: a fixed limit would cut large bodies on slow but
	// honest links, and still let a slow body hold the connection up to
	// it. Bodies are read through a Reader at BodyPace instead.
	ReadTimeout time.Duration
	// WriteTimeout is a backstop for handlers that do not pace their
	// reply: the time to write the largest reply (a 12 MiB sibling set)
	// at ReplyPace. Handlers that write values pace them with a Writer
	// (or set ReplyPace.TimeFor(size) through http.ResponseController),
	// which cuts a client that reads nothing after ReplyPace.Grace.
	WriteTimeout time.Duration
	// IdleTimeout closes a kept-alive connection with no request: above
	// Go's client default of 90 s, so clients close idle connections
	// first and never send on one the server is closing.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request headers.
	MaxHeaderBytes int
}

// DefaultHTTPTimeouts returns the settings described at HTTPTimeouts.
func DefaultHTTPTimeouts() HTTPTimeouts {
	return HTTPTimeouts{
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       0,
		WriteTimeout:      ReplyPace.TimeFor(13 << 20).Round(time.Second),
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// Apply sets the timeouts on s.
func (h HTTPTimeouts) Apply(s *http.Server) {
	s.ReadHeaderTimeout = h.ReadHeaderTimeout
	s.ReadTimeout = h.ReadTimeout
	s.WriteTimeout = h.WriteTimeout
	s.IdleTimeout = h.IdleTimeout
	s.MaxHeaderBytes = h.MaxHeaderBytes
}

// BodyReader paces r.Body at p with an absolute deadline (zero: none),
// setting the connection's read deadline through w. The caller must Close
// it when done with the body (a deadline left on the connection would end
// the request's context). A *SlowError from it should be answered 408 and
// the connection closes.
func BodyReader(w http.ResponseWriter, r *http.Request, p Pace, deadline time.Time) *Reader {
	return NewReader(r.Body, http.NewResponseController(w).SetReadDeadline, p, deadline)
}

// ReplyWriter paces writes of a reply body through w at p, with an
// absolute deadline (zero: none). Write the headers first; Close it when
// the body is written.
func ReplyWriter(w http.ResponseWriter, p Pace, deadline time.Time) *Writer {
	return NewWriter(w, http.NewResponseController(w).SetWriteDeadline, p, deadline)
}
