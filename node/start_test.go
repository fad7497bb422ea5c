package node

import (
	"errors"
	"log/slog"
	"net"
	"testing"
)

// Issue 19, item 1: a node whose RPC address is taken used to panic in
// Close (a typed-nil *transport.TCP in the Transport interface) and leave
// its store marked unclean. It must fail with a StartError naming the
// setting, and the next start on the same directory must be a clean one.
func TestNewRPCAddressInUse(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	dir := t.TempDir()
	cfg := DefaultLocalConfig()
	cfg.NodeID, cfg.DataDir = "n1", dir
	cfg.HTTPAddr, cfg.RPCAddr, cfg.GossipAddr = "127.0.0.1:0", held.Addr().String(), "127.0.0.1:0"
	nd, err := New(cfg)
	if err == nil {
		nd.Close()
		t.Fatal("New succeeded on an RPC address another listener holds")
	}
	var se *StartError
	if !errors.As(err, &se) || se.Setting != "rpc" || se.Value != cfg.RPCAddr || !se.InUse() {
		t.Fatalf("New: %v (%#v), want a StartError for rpc %s, address in use", err, se, cfg.RPCAddr)
	}

	var logs lockedBuffer
	cfg.RPCAddr = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	nd, err = New(cfg)
	if err != nil {
		t.Fatalf("second start on a free address: %v", err)
	}
	if err := nd.Close(); err != nil {
		t.Fatal(err)
	}
	if logs.count("did not shut down cleanly") > 0 {
		t.Fatal("the failed start left the store marked unclean")
	}
}
