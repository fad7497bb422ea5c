package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/internal/excerpt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Caps on what the client reads from a node, so a misbehaving peer cannot
// make it allocate without bound.
const (
	// MaxValueBytes bounds a value body (200) and a sibling list (300). The
	// node's own limit is configurable up to 64 MiB per value, and a 300
	// carries base64 of every sibling.
	MaxValueBytes = 128 << 20
	// MaxInfoBytes bounds /cluster/members, /cluster/ring and /status.
	MaxInfoBytes = 16 << 20
	// maxErrorBytes bounds an error body.
	maxErrorBytes = 64 << 10
)

// Defaults of the client-level options.
const (
	DefaultMaxIdleConnsPerHost = 256
	DefaultRequestTimeout      = 30 * time.Second
	// timeoutMargin is how much longer than a request's Timeout the client
	// waits, so the node's quorum answer (with its counts) arrives first.
	timeoutMargin = time.Second
)

// Client talks to a quorumkv cluster over HTTP. Create it with New. It is
// safe for concurrent use.
type Client struct {
	addrs          []string // base URLs, e.g. "http://127.0.0.1:8080"
	hc             *http.Client
	requestTimeout time.Duration
	next           atomic.Uint64
	// failover is the per-address probe timeout (WithFailover); 0: off.
	failover time.Duration
	// token is sent as a bearer token with every request (security.go).
	token string
	// answered holds, per base URL, the Unix nanoseconds of its last
	// answer (probe or request), so a node that just answered is not
	// probed again.
	answered sync.Map
}

// Option configures a Client.
type Option func(*settings)

type settings struct {
	hc             *http.Client
	maxIdle        int
	requestTimeout time.Duration
	failover       time.Duration
	token          string      // WithToken
	tls            *tls.Config // WithTLSConfig, WithCAFile
	err            error       // an option that failed (WithCAFile)
}

// WithHTTPClient makes the Client use hc as it is (its transport, timeout
// and redirect policy); WithMaxIdleConnsPerHost is then ignored.
func WithHTTPClient(hc *http.Client) Option { return func(s *settings) { s.hc = hc } }

// WithMaxIdleConnsPerHost sets how many idle keep-alive connections the
// client keeps per node. Set it to at least the number of requests you keep
// in flight per node, or connections are closed and reopened under load.
// Default DefaultMaxIdleConnsPerHost.
func WithMaxIdleConnsPerHost(n int) Option { return func(s *settings) { s.maxIdle = n } }

// WithRequestTimeout bounds every request that has no Timeout option, on top
// of its context's own deadline. Default DefaultRequestTimeout; 0 means no
// bound beyond the context.
func WithRequestTimeout(d time.Duration) Option {
	return func(s *settings) { s.requestTimeout = d }
}

// WithFailover makes the client skip a node that does not answer within d
// and try the next address: a node that is paused, overloaded or cut off
// accepts connections (the kernel does) but answers nothing, so failing
// over only on refused connections would wait for the whole request
// timeout. Before sending to a node that has not answered in the last
// few seconds, the client asks its /healthz, bounded by d, and moves on
// when there is no 200 in time. Only then is the request sent, so a write
// reaches at most one node (a request that times out after it was sent is
// not repeated elsewhere: it may have been applied). d also bounds each
// connection attempt. It costs one round trip per node and few seconds;
// for interactive tools. Default 0: off (fail over on refused connections
// only).
func WithFailover(d time.Duration) Option { return func(s *settings) { s.failover = d } }

// probeFresh is how long an answer from a node spares it a probe.
const probeFresh = 3 * time.Second

// New returns a Client for the nodes at addrs, each "host:port" or a URL
// such as "http://host:port". It does not contact them.
func New(addrs []string, opts ...Option) (*Client, error) {
	if len(addrs) == 0 {
		return nil, badRequest("no node address")
	}
	s := settings{maxIdle: DefaultMaxIdleConnsPerHost, requestTimeout: DefaultRequestTimeout}
	for _, o := range opts {
		o(&s)
	}
	if s.err != nil {
		return nil, s.err
	}
	if err := checkToken(s.token); err != nil {
		return nil, err
	}
	if s.maxIdle < 1 {
		return nil, badRequest("max idle connections per host %d: must be at least 1", s.maxIdle)
	}
	if s.requestTimeout < 0 {
		return nil, badRequest("request timeout %s: cannot be negative", s.requestTimeout)
	}
	if s.failover < 0 {
		return nil, badRequest("failover timeout %s: cannot be negative", s.failover)
	}
	c := &Client{hc: s.hc, requestTimeout: s.requestTimeout, failover: s.failover, token: s.token}
	for _, a := range addrs {
		base, err := baseURL(a)
		if err != nil {
			return nil, err
		}
		c.addrs = append(c.addrs, base)
	}
	if c.hc == nil {
		dial := 5 * time.Second
		if s.failover > 0 {
			dial = min(dial, s.failover)
		}
		tr := newTransport(s.maxIdle, dial)
		tr.TLSClientConfig = s.tls
		c.hc = &http.Client{Transport: tr}
	}
	return c, nil
}

// baseURL normalises one address to "scheme://host:port".
func baseURL(a string) (string, error) {
	a = strings.TrimSpace(a)
	if !strings.Contains(a, "://") {
		a = "http://" + a
	}
	u, err := url.Parse(a)
	if err != nil {
		return "", badRequest("node address %q: %v", a, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", badRequest("node address %q: scheme must be http or https", a)
	}
	if _, port, err := net.SplitHostPort(u.Host); err != nil || port == "" {
		return "", badRequest("node address %q: want host:port", a)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return "", badRequest("node address %q: want no path or query", a)
	}
	return u.Scheme + "://" + u.Host, nil
}

// newTransport is a keep-alive transport for many concurrent small requests
// to a few hosts: enough idle connections per host to avoid reconnecting
// under load, no compression (values are opaque bytes, and compressing small
// ones costs more CPU than it saves on loopback or a LAN).
func newTransport(maxIdle int, dialTimeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy: nil, // nodes are addressed directly; an HTTP_PROXY must not intercept
		DialContext: (&net.Dialer{
			Timeout:   dialTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          0, // no global cap; MaxIdleConnsPerHost bounds each node
		MaxIdleConnsPerHost:   maxIdle,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // bounded by the request's context instead
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}
}

// Addrs returns the nodes' base URLs, in the order given to New (the index
// Node takes).
func (c *Client) Addrs() []string { return append([]string(nil), c.addrs...) }

// Close closes idle connections. The Client stays usable.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// response is an answer read in full.
type response struct {
	status int
	header http.Header
	body   []byte
	addr   string
}

// do sends one request. method and path are fixed by the caller; body is
// re-sent from the start on each attempt. It fails over to the next address
// only when the connection could not be made, so nothing reached a node.
func (c *Client) do(ctx context.Context, method, path string, req *request, body []byte, limit int64) (*response, error) {
	first, tries := 0, len(c.addrs)
	if req.pinned {
		if req.node < 0 || req.node >= len(c.addrs) {
			return nil, badRequest("node %d: the client has %d address(es)", req.node, len(c.addrs))
		}
		first, tries = req.node, 1
	} else {
		first = int((c.next.Add(1) - 1) % uint64(len(c.addrs)))
	}
	switch {
	case req.timeout > 0:
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.timeout+timeoutMargin)
		defer cancel()
	case c.requestTimeout > 0:
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.requestTimeout)
		defer cancel()
	}
	q := ""
	if len(req.query) > 0 {
		q = "?" + req.query.Encode()
	}
	var errs []error
	for i := range tries {
		addr := c.addrs[(first+i)%len(c.addrs)]
		if err := c.probe(ctx, addr); err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		resp, err := c.send(ctx, method, addr+path+q, req, body, limit)
		if err == nil {
			resp.addr = addr
			c.answered.Store(addr, time.Now().UnixNano())
			return resp, nil
		}
		errs = append(errs, err)
		if !isDialError(err) || ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// probe checks, with WithFailover, that addr answers /healthz with 2xx
// within the failover timeout, unless it answered recently. The error
// wraps ErrNoAnswer.
func (c *Client) probe(ctx context.Context, addr string) error {
	if c.failover <= 0 {
		return nil
	}
	if t, ok := c.answered.Load(addr); ok && time.Since(time.Unix(0, t.(int64))) < probeFresh {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, c.failover)
	defer cancel()
	hr, err := http.NewRequestWithContext(pctx, http.MethodGet, addr+"/healthz", nil)
	if err != nil {
		return badRequest("build request: %v", err)
	}
	res, err := c.hc.Do(hr)
	if err != nil {
		if ctx.Err() == nil && pctx.Err() != nil {
			return fmt.Errorf("%s: no answer within %s (paused, overloaded or cut off?): %w", addr, c.failover, ErrNoAnswer)
		}
		return fmt.Errorf("%s: %w (%w)", addr, err, ErrNoAnswer)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxErrorBytes))
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s: not healthy (/healthz answered %d): %w", addr, res.StatusCode, ErrNoAnswer)
	}
	c.answered.Store(addr, time.Now().UnixNano())
	return nil
}

func (c *Client) send(ctx context.Context, method, u string, req *request, body []byte, limit int64) (*response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hr, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, badRequest("build request: %v", err)
	}
	c.authorize(hr)
	if req.context != nil {
		hr.Header.Set(api.HeaderContext, *req.context)
	}
	if req.createOnly {
		hr.Header.Set("If-None-Match", "*")
	}
	if req.contentType != "" {
		hr.Header.Set("Content-Type", req.contentType)
	}
	res, err := c.hc.Do(hr)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode >= 400 {
		limit = maxErrorBytes
	}
	if res.ContentLength > limit {
		// Drain nothing: the connection is dropped rather than read.
		return nil, fmt.Errorf("%s %s: answer of %d bytes exceeds the client's limit of %d", method, u, res.ContentLength, limit)
	}
	var b []byte
	if res.ContentLength >= 0 {
		// Known length (checked against limit above): one exact buffer
		// instead of ReadAll's doubling.
		b = make([]byte, res.ContentLength)
		if _, err := io.ReadFull(res.Body, b); err != nil {
			return nil, fmt.Errorf("%s %s: read answer: %w", method, u, err)
		}
	} else {
		b, err = io.ReadAll(io.LimitReader(res.Body, limit+1))
		if err != nil {
			return nil, fmt.Errorf("%s %s: read answer: %w", method, u, err)
		}
		if int64(len(b)) > limit {
			return nil, fmt.Errorf("%s %s: answer exceeds the client's limit of %d bytes", method, u, limit)
		}
	}
	return &response{status: res.StatusCode, header: res.Header, body: b}, nil
}

// isDialError reports whether err happened while connecting, before any byte
// of the request was sent.
func isDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// errorOf turns an error answer into an *Error.
func errorOf(r *response) *Error {
	e := &Error{Status: r.status, Addr: r.addr}
	var body api.Error
	if err := json.Unmarshal(r.body, &body); err == nil && (body.Error != "" || body.Code != "") {
		v := func(p *int) int {
			if p == nil {
				return 0
			}
			return *p
		}
		e.Code, e.Msg, e.Param = body.Code, body.Error, body.Param
		e.Acks, e.Required = v(body.Acks), v(body.Required)
		e.PrimaryAcks, e.RequiredPrimary = v(body.PrimaryAcks), v(body.RequiredPrimary)
		e.FallbackAcks, e.DurableAcks, e.RequiredDurable = v(body.FallbackAcks), v(body.DurableAcks), v(body.RequiredDurable)
		e.Targets = v(body.Targets)
	} else {
		e.Msg = excerpt.Of(strings.TrimSpace(string(r.body)), 512)
	}
	if e.Code == "" {
		e.Code = "http_" + strconv.Itoa(r.status)
	}
	if e.Msg == "" {
		e.Msg = http.StatusText(r.status)
	}
	if e.Msg == "" {
		e.Msg = "HTTP status " + strconv.Itoa(r.status)
	}
	return e
}

// call sends a request that is not a key's (cluster information, admin)
// and returns the answer when it is a 200; what names the call in errors.
// query sets query parameters.
func (c *Client) call(ctx context.Context, what, method, path string, op opMask, opts []RequestOption, query map[string]string, maxBody int64) (*response, error) {
	req, err := newRequest(op, opts)
	if err != nil {
		return nil, err
	}
	for k, v := range query {
		req.query.Set(k, v)
	}
	res, err := c.do(ctx, method, path, req, nil, maxBody)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if res.status != http.StatusOK {
		return nil, fmt.Errorf("%s (%s): %w", what, res.addr, errorOf(res))
	}
	return res, nil
}

// callJSON is call with the answer's JSON body decoded into a new T. It
// returns the answer too, for callers that keep its raw body or address.
func callJSON[T any](ctx context.Context, c *Client, what, method, path string, op opMask, opts []RequestOption, query map[string]string) (*T, *response, error) {
	res, err := c.call(ctx, what, method, path, op, opts, query, MaxInfoBytes)
	if err != nil {
		return nil, nil, err
	}
	v := new(T)
	if err := json.Unmarshal(res.body, v); err != nil {
		return nil, nil, fmt.Errorf("%s: decode answer from %s: %w", what, res.addr, err)
	}
	return v, res, nil
}

// getJSON fetches an info endpoint into a new T.
func getJSON[T any](ctx context.Context, c *Client, path string, op opMask, opts []RequestOption) (*T, *response, error) {
	return callJSON[T](ctx, c, "get "+path, http.MethodGet, path, op, opts, nil)
}
