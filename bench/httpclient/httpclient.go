package httpclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/quorumkv/quorumkv/bench"
	"github.com/quorumkv/quorumkv/client"
)

// ErrBadAnswer is wrapped when a node acknowledged a write without the
// sibling set the adapter asked for (returnbody): the oracle could not
// tell what the write's context covers, so it counts as a failed request
// (kind "bad_answer").
var ErrBadAnswer = errors.New("incomplete answer")

// Client is a bench.Client over a *client.Client. Coordinator i is the
// i-th address the client was created with.
type Client struct {
	c      *client.Client
	coords int
}

var _ bench.Client = (*Client)(nil)

// New returns the adapter for c. It does not contact any node.
func New(c *client.Client) *Client {
	return &Client{c: c, coords: len(c.Addrs())}
}

// Coordinators returns the number of addresses c was created with.
func (c *Client) Coordinators() int { return c.coords }

// Get reads key through node coord with N and R from q (R = N when allR).
// A key without a live value is a successful read (Found false) that still
// reports its context.
func (c *Client) Get(ctx context.Context, coord int, key string, q bench.Quorum, allR bool) (bench.ReadResult, error) {
	r := q.R
	if allR {
		r = q.N
	}
	obj, err := c.c.Get(ctx, key, client.Node(coord), client.N(q.N), client.R(r))
	if err != nil && !(obj != nil && errors.Is(err, client.ErrNotFound)) {
		return bench.ReadResult{}, err
	}
	return bench.ReadResult{Found: obj.Found, Values: liveValues(obj), Context: obj.Context}, nil
}

// Put writes value through node coord with N and W from q, superseding what
// context covers ("" writes blind). It asks for the key's siblings after
// the write (returnbody), which the oracle needs to know what the new
// context covers.
func (c *Client) Put(ctx context.Context, coord int, key string, value []byte, context string, q bench.Quorum) (bench.WriteResult, error) {
	wr, err := c.c.Put(ctx, key, value, client.Node(coord), client.N(q.N), client.W(q.W), client.Context(context), client.ReturnBody())
	if err != nil {
		return bench.WriteResult{}, err
	}
	if wr.Object == nil {
		return bench.WriteResult{}, fmt.Errorf("put %q: acknowledged without its sibling set: %w", key, ErrBadAnswer)
	}
	return bench.WriteResult{Context: wr.Context, Values: liveValues(wr.Object)}, nil
}

// liveValues returns the data of obj's live siblings (tombstones are
// left out: the HTTP API shows them only next to a live value).
func liveValues(obj *client.Object) [][]byte {
	var out [][]byte
	for _, s := range obj.Siblings {
		if !s.Deleted {
			out = append(out, s.Value)
		}
	}
	return out
}

// ErrorKind labels an error of Get or Put for the report:
//
//	quorum       the coordinator answered 503 quorum_not_met (too few replicas in time)
//	unavailable  any other 503, or the node could not be reached (refused, reset, closed)
//	timeout      the request's deadline passed before an answer
//	bad_request  the node refused the request as invalid (4xx)
//	canceled     the run was stopped
//	bad_answer   a write acknowledged without the sibling set asked for
//	other        anything else (a 500, an I/O error mid-answer)
func ErrorKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, client.ErrQuorum):
		return "quorum"
	case errors.Is(err, client.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, client.ErrBadRequest):
		return "bad_request"
	case errors.Is(err, ErrBadAnswer):
		return "bad_answer"
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), isDial(err),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// Refused, or the connection died under the request: the node is
		// down (killed, restarting).
		return "unavailable"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "other"
}

func isDial(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

var _ bench.Creator = (*Client)(nil)

// Create writes value under key through node coord with If-None-Match: *
// (client.CreateOnly) and N, R and W from q: created is false when the
// node's read at R found a live value.
func (c *Client) Create(ctx context.Context, coord int, key string, value []byte, q bench.Quorum) (bool, error) {
	_, err := c.c.Put(ctx, key, value, client.Node(coord), client.N(q.N), client.R(q.R), client.W(q.W), client.CreateOnly())
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, client.ErrExists):
		return false, nil
	}
	return false, err
}
