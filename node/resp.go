package node

import "context"

type respServer struct{}

func (n *Node) startRESP() error            { return nil }
func (r *respServer) close(context.Context) {}
func (r *respServer) addr() string          { return "" }
