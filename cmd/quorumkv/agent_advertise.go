package main

import (
	"fmt"

	"github.com/quorumkv/quorumkv/internal/netaddr"
	"github.com/quorumkv/quorumkv/node"
)

// agentAdvertise applies --advertise, and refuses a config in which peers
// would be told to dial a wildcard address: a listener bound to 0.0.0.0 (as
// in any container) without --advertise, or --advertise itself a
// wildcard. The errors name the flags, as node.Config.Validate cannot.
func agentAdvertise(vals map[string]string, cfg *node.Config) error {
	v, set := vals["advertise"]
	if set {
		if err := netaddr.ValidateAdvertiseHost(v); err != nil {
			return fmt.Errorf("--advertise (QUORUMKV_ADVERTISE): %v", err)
		}
		cfg.Advertise = v
		return nil
	}
	if name, addr, ok := cfg.WildcardListener(); ok {
		return fmt.Errorf("--advertise is required: --%s %s binds a wildcard address, which peers and clients cannot dial; set --advertise (or QUORUMKV_ADVERTISE) to the host name or IP address they should use for this node", name, addr)
	}
	return nil
}
