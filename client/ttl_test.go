package client_test

import (
	"errors"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/client"
)

// The TTL option: the node stamps the deadline; reads say the time left,
// siblings their deadline; a bad TTL is the node's 400.
func TestAgainstNodeTTL(t *testing.T) {
	_, c := cluster(t)
	ctx := t.Context()
	if _, err := c.Put(ctx, "k", []byte("v"), client.TTL(time.Hour), client.W(3)); err != nil {
		t.Fatal(err)
	}
	obj, err := c.Get(ctx, "k", client.R(3))
	if err != nil || obj.ExpiresIn <= 59*time.Minute || obj.ExpiresIn > time.Hour {
		t.Fatalf("get: %+v, %v; want about an hour left", obj, err)
	}
	if _, err := c.Put(ctx, "k", []byte("w"), client.W(3)); err != nil {
		t.Fatal(err)
	}
	obj, err = c.Get(ctx, "k", client.R(3))
	if err != nil || len(obj.Siblings) != 2 || obj.ExpiresIn != 0 {
		t.Fatalf("siblings: %+v, %v", obj, err)
	}
	withDeadline := 0
	for _, s := range obj.Siblings {
		if !s.Expires.IsZero() {
			withDeadline++
		}
	}
	if withDeadline != 1 {
		t.Fatalf("%d siblings with a deadline, want 1", withDeadline)
	}
	if _, err := c.Put(ctx, "k", []byte("v"), client.TTL(-time.Second)); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("negative TTL: %v", err)
	}
	if _, err := c.Get(ctx, "k", client.TTL(time.Second)); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("TTL on a get: %v", err)
	}
}
