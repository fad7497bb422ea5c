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
	"github.com/quorumkv/quorumkv/vclock"
)

// ErrBadAnswer is wrapped when a node answered successfully but its causal
// context or write dot could not be decoded: the checker cannot judge such
// an answer, so it counts as a failed request (kind "bad_answer") rather
// than as a read that saw nothing.
var ErrBadAnswer = errors.New("undecodable answer")

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
	v, perr := client.ParseContext(obj.Context)
	if perr != nil {
		return bench.ReadResult{}, fmt.Errorf("get %q: context: %w: %w", key, ErrBadAnswer, perr)
	}
	res := bench.ReadResult{Found: obj.Found, Context: obj.Context, Observed: Observed(v)}
	if obj.Found {
		for _, s := range obj.Siblings {
			if !s.Deleted {
				res.Siblings++
			}
		}
	}
	return res, nil
}

// Put writes value through node coord with N and W from q, superseding what
// context covers ("" writes blind).
func (c *Client) Put(ctx context.Context, coord int, key string, value []byte, context string, q bench.Quorum) (bench.WriteResult, error) {
	wr, err := c.c.Put(ctx, key, value, client.Node(coord), client.N(q.N), client.W(q.W), client.Context(context))
	if err != nil {
		return bench.WriteResult{}, err
	}
	id, err := WriteID(wr.Dot)
	if err != nil {
		return bench.WriteResult{}, fmt.Errorf("put %q: %w", key, err)
	}
	return bench.WriteResult{ID: id, Context: wr.Context}, nil
}

// WriteID decodes a write's dot token (client.WriteResult.Dot).
func WriteID(dot string) (bench.WriteID, error) {
	if dot == "" {
		return bench.WriteID{}, fmt.Errorf("no dot in the answer: %w", ErrBadAnswer)
	}
	d, err := vclock.DecodeDot(dot)
	if err != nil {
		return bench.WriteID{}, fmt.Errorf("dot: %w: %w", ErrBadAnswer, err)
	}
	return bench.WriteID{Node: d.Actor.Node, Epoch: d.Actor.Epoch, Counter: d.Counter}, nil
}

// Observed returns v as the bench sees a read: it covers a write when v has
// seen the write's dot.
func Observed(v vclock.Vector) bench.Observed {
	return vectorObserved(v)
}

type vectorObserved vclock.Vector

func (v vectorObserved) Covers(id bench.WriteID) bool {
	return vclock.Vector(v).Covers(vclock.Dot{Actor: vclock.Actor{Node: id.Node, Epoch: id.Epoch}, Counter: id.Counter})
}

// ErrorKind labels an error of Get or Put for the report:
//
//	quorum       the coordinator answered 503 quorum_not_met (too few replicas in time)
//	unavailable  any other 503, or the node could not be reached (refused, reset, closed)
//	timeout      the request's deadline passed before an answer
//	bad_request  the node refused the request as invalid (4xx)
//	canceled     the run was stopped
//	bad_answer   a success whose context or dot could not be decoded
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
