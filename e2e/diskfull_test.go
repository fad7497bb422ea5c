//go:build linux

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Issue 14, full disk, as real processes on a real (small) file system:
// an agent stopped cleanly, its tmpfs then filled by another file until
// the free space is below half its --min-free-disk, starts read-only
// (before: it exited with "put meta clean: disk full"), serves every
// acknowledged write, refuses writes with 507 disk_full, and turns
// writable by itself once the file is removed; every write it
// acknowledged is there after a clean restart.
func TestDiskFullStartReadOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: mounting a tmpfs needs root, so the start on a full disk is NOT tested on a real file system here")
	}
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=256m,mode=0700"); err != nil {
		t.Skipf("SKIPPED: cannot mount a tmpfs (%v), so the start on a full disk is NOT tested on a real file system here", err)
	}
	// Registered before the agents start, so it runs after they are gone.
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			_ = unix.Unmount(mnt, unix.MNT_DETACH)
		}
	})
	ports := addresses(t, 1)[0]
	args := []string{"agent", "--node-id", "n1", "--data-dir", filepath.Join(mnt, "data"), "--http", ports.HTTP,
		"--rpc", ports.RPC, "--gossip", ports.Gossip, "--profile", "local", "--min-free-disk", "64MiB"}
	env := append(cleanEnv(), "QUORUMKV_SECRET=e2e-secret")
	logDir := t.TempDir()
	base := "http://" + ports.HTTP
	run := func(name string) *proc {
		p := startProc(t, filepath.Join(logDir, name+".log"), env, args...)
		waitForProcs(t, 30*time.Second, name+": the agent answers /healthz", func() bool {
			status, _, _ := do(t, "GET", base+"/healthz", nil, nil)
			return status == 200
		}, p)
		return p
	}
	const keys = 50
	check := func(when string, extra ...string) {
		t.Helper()
		for i := range keys {
			if status, _, body := do(t, "GET", fmt.Sprintf("%s/kv/k%02d", base, i), nil, nil); status != 200 || string(body) != fmt.Sprint("v", i) {
				t.Fatalf("%s: GET k%02d = %d %q, want 200 v%d", when, i, status, body, i)
			}
		}
		for _, k := range extra {
			if status, _, body := do(t, "GET", base+"/kv/"+k, nil, nil); status != 200 || string(body) != k {
				t.Fatalf("%s: GET %s = %d %q", when, k, status, body)
			}
		}
	}

	p := run("first")
	for i := range keys {
		if status, _, body := do(t, "PUT", fmt.Sprintf("%s/kv/k%02d", base, i), []byte(fmt.Sprint("v", i)), nil); status != 204 {
			t.Fatalf("PUT k%02d: %d %s", i, status, body)
		}
	}
	if err := p.stop(20 * time.Second); err != nil {
		t.Fatalf("first stop: %v", err)
	}

	// Fill the file system to 8 MiB free: below half of the reserve
	// (at least the 64 MiB asked for).
	var fs unix.Statfs_t
	if err := unix.Statfs(mnt, &fs); err != nil {
		t.Fatal(err)
	}
	ballast := filepath.Join(mnt, "ballast")
	fill(t, ballast, int64(fs.Bavail)*fs.Bsize-8<<20)

	p = run("full")
	if !strings.Contains(p.log(), "start-up writes are deferred") {
		t.Fatalf("the start below half the reserve did not defer its writes; log:\n%s", p.log())
	}
	check("on the full disk")
	status, _, body := do(t, "PUT", base+"/kv/after", []byte("after"), nil)
	if status != 507 || !strings.Contains(string(body), "disk_full") {
		t.Fatalf("PUT on the full disk: %d %s, want 507 disk_full", status, body)
	}
	if status, _, body := do(t, "GET", base+"/status", nil, nil); status != 200 || !strings.Contains(string(body), `"read_only": true`) {
		t.Fatalf("/status on the full disk: %d %s, want read_only true", status, body)
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitForProcs(t, 30*time.Second, "writes accepted again once space is freed", func() bool {
		status, _, _ := do(t, "PUT", base+"/kv/after", []byte("after"), nil)
		return status == 204
	}, p)
	t.Logf("writable again %v after the space was freed", time.Since(start).Round(time.Millisecond))
	check("after the space came back", "after")
	if err := p.stop(20 * time.Second); err != nil {
		t.Fatalf("stop after the full disk: %v", err)
	}
	p = run("again")
	if strings.Contains(p.log(), "did not shut down cleanly") || strings.Contains(p.log(), "panic") {
		t.Fatalf("restart after the full disk:\n%s", p.log())
	}
	check("after a restart", "after")
}

// fill writes a file of n bytes (every page of a tmpfs allocated).
func fill(t *testing.T, path string, n int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i*7 + 1)
	}
	for n > 0 {
		w, err := f.Write(buf[:min(int64(len(buf)), n)])
		if err != nil {
			t.Fatalf("fill %s: %v", path, err)
		}
		n -= int64(w)
	}
}
