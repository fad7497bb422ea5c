package devcluster

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// A cluster's free ports lie below the kernel's ephemeral range, so that
// nothing else is handed one while an agent is down, and each stays
// reserved against other clusters (other processes) until Stop.
func TestFreePortsReservedBelowEphemeralRange(t *testing.T) {
	lo, hi, ok := reserveRange()
	if !ok {
		t.Skip("no usable range below the ephemeral ports here (no /proc or a low range)")
	}
	c := &Cluster{}
	taken := map[string]bool{}
	var ports []int
	for range 20 {
		addr, ok := c.reservePort(true, taken)
		if !ok {
			t.Fatalf("no port reserved in %d-%d", lo, hi)
		}
		if taken[addr] {
			t.Fatalf("%s reserved twice", addr)
		}
		taken[addr] = true
		_, ps, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := strconv.Atoi(ps)
		if p < lo || p > hi {
			t.Fatalf("port %d outside %d-%d", p, lo, hi)
		}
		ports = append(ports, p)
	}
	// Another reservation (a new open file, as another process makes) is refused while c holds them.
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("quorumkv-ports-%d", os.Getuid()))
	tryLock := func(p int) error {
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(p)), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	for _, p := range ports {
		if err := tryLock(p); !errors.Is(err, syscall.EWOULDBLOCK) {
			t.Fatalf("port %d could be reserved again while held: %v", p, err)
		}
	}
	// Two clusters in one process do not share one either.
	other := &Cluster{}
	for range 50 {
		addr, ok := other.reservePort(false, nil)
		if !ok {
			t.Fatal("second cluster reserved nothing")
		}
		if taken[addr] {
			t.Fatalf("%s handed to two clusters", addr)
		}
	}
	other.releasePorts()
	c.releasePorts()
	for _, p := range ports {
		if err := tryLock(p); err != nil {
			t.Fatalf("port %d still reserved after release: %v", p, err)
		}
	}
}
