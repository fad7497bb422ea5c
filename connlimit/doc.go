// Package connlimit bounds what a client connection can cost a node: how
// many connections are open (Listener: a total cap and a per-source share,
// the excess closed at accept, counted and logged at a limited rate), and
// how long a slow peer can hold one (a minimum transfer rate for request
// bodies, replies and RESP commands, plus absolute deadlines).
//
// The rate rule is a Pace: a transfer starts with Grace of credit, every
// byte adds 1/MinRate seconds, at most Window of credit is banked, and the
// transfer fails with a *SlowError when the credit runs out. Reader and
// Writer apply it by setting the connection's deadlines (through
// http.ResponseController for net/http); CommandTimer computes the read
// deadline of a RESP connection (idle between commands, paced within
// one). HTTPTimeouts are the http.Server settings that go with them, and
// ConnCaps derives the connection caps from the file descriptor limit.
// Accept is the accept step of a server's own loop (RESP, the peer
// transport): it backs off while descriptors run out, as net/http does.
// Defaults and their reasons are in the "Resource limits" section of
// docs/ARCHITECTURE.md.
//
// The package does not serve anything: node wraps its listeners and reads
// bodies through it. Listener is safe for concurrent use; a Reader, Writer
// or CommandTimer belongs to one connection's goroutine.
//
//	ln, _ := connlimit.NewListener(tcpLn, connlimit.Config{Name: "http", MaxConns: 4096, Log: lim})
//	srv := &http.Server{Handler: h}
//	connlimit.DefaultHTTPTimeouts().Apply(srv)
//	go srv.Serve(ln)
//	// in a handler:
//	body := connlimit.BodyReader(w, r, connlimit.BodyPace, time.Time{})
//	defer body.Close()
//	data, err := io.ReadAll(io.LimitReader(body, max+1)) // *SlowError: 408
package connlimit
