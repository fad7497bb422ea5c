package powerfs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// mount mounts a fresh power-loss file system, or skips loudly where FUSE
// mounts cannot be made.
func mount(t *testing.T) (f *FS, backing, mnt string) {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("SKIPPED: no FUSE here, the power-loss layer cannot run: %v", err)
	}
	backing, mnt = t.TempDir(), t.TempDir()
	f, err := Mount(backing, mnt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Unmount() })
	return f, backing, mnt
}

// TestWriteSyncLose: data written with write(2) reaches the backing file
// only when fsynced; PowerLoss drops the rest; sizes seen through the mount
// include unsynced data.
func TestWriteSyncLose(t *testing.T) {
	f, backing, mnt := mount(t)
	fh, err := os.OpenFile(filepath.Join(mnt, "a"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close() // on failure: a file left open on the mount blocks its unmount
	if _, err := fh.Write([]byte("synced;")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(backing, "a")); len(b) != 0 {
		t.Fatalf("unsynced write reached the backing file: %q", b)
	}
	if err := fh.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := fh.Write([]byte("lost")); err != nil {
		t.Fatal(err)
	}
	if st, err := fh.Stat(); err != nil || st.Size() != 11 {
		t.Fatalf("size through the mount = %v, %v; want 11", st, err)
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "a")); err != nil || string(b) != "synced;lost" {
		t.Fatalf("read through the mount = %q, %v", b, err)
	}
	if err := fh.Close(); err != nil { // close is no sync
		t.Fatal(err)
	}
	if err := f.PowerLoss(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(backing, "a")); err != nil || string(b) != "synced;" {
		t.Fatalf("after power loss: %q, %v; want only the synced part", b, err)
	}
	if st := f.Stats(); st.Fsyncs != 1 || st.DroppedBytes == 0 {
		t.Fatalf("stats %+v", st)
	}
}

// mmapChildEnv names the file the mmap child maps (see TestMmap).
const mmapChildEnv = "POWERFS_MMAP_CHILD_FILE"

// TestMmapChild is TestMmap's child: it maps the file, writes two pages,
// msyncs, writes a third and exits without syncing it. It is skipped
// unless run by TestMmap. A process must never touch a mapping of a FUSE
// file that it serves itself: a page fault on it blocks a thread the Go
// runtime counts as running, and a stop-the-world (GC) then waits for it
// while the FUSE server goroutines that would answer the fault are stopped.
func TestMmapChild(t *testing.T) {
	path := os.Getenv(mmapChildEnv)
	if path == "" {
		t.Skip("only runs as the child of TestMmap")
	}
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := fh.Truncate(4 * pageSize); err != nil { // sparse, as badger does
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(fh.Fd()), 0, 4*pageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("shared writable mmap through FUSE: %v", err)
	}
	copy(m[0:], "page0")
	copy(m[pageSize:], "page1")
	if err := unix.Msync(m, unix.MS_SYNC); err != nil {
		t.Fatal(err)
	}
	copy(m[2*pageSize:], "page2-unsynced")
	// Exit without a sync: the dirty page stays in the kernel's cache.
}

// TestMmap: pages written through a shared writable mapping (as badger
// writes its logs and tables) reach the backing file on msync, and
// unsynced ones are lost.
func TestMmap(t *testing.T) {
	f, backing, mnt := mount(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestMmapChild$", "-test.count=1", "-test.timeout=30s")
	cmd.Env = append(os.Environ(), mmapChildEnv+"="+filepath.Join(mnt, "m"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mmap child: %v\n%s", err, out)
	}
	if err := f.PowerLoss(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(backing, "m"))
	if err != nil || len(b) != 4*pageSize {
		t.Fatalf("backing file: %d bytes, %v", len(b), err)
	}
	if !bytes.HasPrefix(b, []byte("page0")) || !bytes.HasPrefix(b[pageSize:], []byte("page1")) {
		t.Fatalf("msynced pages missing: %q %q", b[:5], b[pageSize:pageSize+5])
	}
	if !bytes.Equal(b[2*pageSize:3*pageSize], make([]byte, pageSize)) {
		t.Fatalf("unsynced mmap page survived: %q", b[2*pageSize:2*pageSize+14])
	}
	if st := f.Stats(); st.Fsyncs == 0 || st.Writes == 0 {
		t.Fatalf("the msync reached the file system as no WRITE or FSYNC: %+v", st)
	}
}

// TestTruncateAndRename: metadata goes through at once; the overlay
// follows a renamed file and is cut by a truncate.
func TestTruncateAndRename(t *testing.T) {
	f, backing, mnt := mount(t)
	p := filepath.Join(mnt, "x")
	fh, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.WriteAt([]byte("0123456789"), 0); err != nil {
		t.Fatal(err)
	}
	if err := fh.Truncate(4); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p, filepath.Join(mnt, "y")); err != nil {
		t.Fatal(err)
	}
	if err := fh.Sync(); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	if b, err := os.ReadFile(filepath.Join(mnt, "y")); err != nil || string(b) != "0123" {
		t.Fatalf("through the mount: %q, %v", b, err)
	}
	if err := f.PowerLoss(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(backing, "y")); err != nil || string(b) != "0123" {
		t.Fatalf("backing: %q, %v", b, err)
	}
}
