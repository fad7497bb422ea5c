//go:build !linux

package devcluster

// reservePort reserves nothing outside Linux: the caller binds port 0
// (see portres_linux.go for why Linux does better).
func (c *Cluster) reservePort(udp bool, taken map[string]bool) (addr string, ok bool) {
	return "", false
}

// releasePorts has nothing to release outside Linux.
func (c *Cluster) releasePorts() {}
