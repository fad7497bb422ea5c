package devcluster

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Free ports found by binding port 0 come from the kernel's ephemeral
// range, which it also hands to every outgoing connection and to any other
// program's port 0: an agent killed and restarted on its old ports found
// one of them taken in between, by a test running beside it ("bind:
// address already in use", e2e TestHintedHandoff on a loaded machine,
// 2026-12-08). So free ports are first sought below that range, where the
// kernel hands out nothing by itself, and each one is reserved across
// processes, for the cluster's life, by an flock'd file: two clusters
// (test binaries side by side, or dev and a test) never share a port, and
// a reservation ends with its process however that ends.

// reservedWindow is how many ports below the ephemeral range are used.
const reservedWindow = 10000

// reservePort finds a free loopback port below the ephemeral range (TCP,
// and the same UDP port with udp), not in taken, reserves it until
// releasePorts and returns its address; ok is false when none was found
// (no /proc, a range too low, a lock directory that cannot be made): the
// caller falls back to port 0.
func (c *Cluster) reservePort(udp bool, taken map[string]bool) (addr string, ok bool) {
	lo, hi, ok := reserveRange()
	if !ok {
		return "", false
	}
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("quorumkv-ports-%d", os.Getuid()))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false
	}
	for range 200 {
		port := lo + rand.IntN(hi-lo+1)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		if taken[addr] {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return "", false
		}
		// Per open file: a second reservation in this process conflicts too.
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		if portFree(addr, udp) != nil { // held by something that does not reserve
			f.Close()
			continue
		}
		c.mu.Lock()
		c.reserved = append(c.reserved, f)
		c.mu.Unlock()
		return addr, true
	}
	return "", false
}

// reserveRange returns the ports below the kernel's ephemeral range that
// reservePort uses, or ok false when that range leaves too few.
func reserveRange() (lo, hi int, ok bool) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, false
	}
	eph, err := strconv.Atoi(f[0])
	if err != nil {
		return 0, 0, false
	}
	hi = eph - 1
	lo = max(hi-reservedWindow+1, 10000)
	if hi-lo < 1000 {
		return 0, 0, false
	}
	return lo, hi, true
}

// releasePorts ends the cluster's port reservations.
func (c *Cluster) releasePorts() {
	c.mu.Lock()
	files := c.reserved
	c.reserved = nil
	c.mu.Unlock()
	for _, f := range files {
		_ = f.Close()
	}
}
