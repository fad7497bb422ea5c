// Package powerfs is a FUSE file system for power-loss tests: a loopback
// of a backing directory that keeps every file's unsynced data in memory.
// Data reaches the backing directory only when the file is fsynced (an
// fsync, fdatasync or msync of a mapping of it); PowerLoss then throws away
// everything not yet synced, as a machine that loses power would, and
// unmounts. A test reopens the backing directory directly to see what
// survived.
//
// What is and is not modelled:
//
//   - File data written with write(2) or through a shared writable mmap
//     (go-fuse serves mmap when direct I/O is off, which it is here: the
//     kernel writes dirty pages back with FUSE WRITE requests, and msync
//     sends them followed by FUSE FSYNC) stays in memory until the file is
//     fsynced. It is the adversarial model POSIX allows: a real kernel also
//     writes dirty pages back on its own after a while, so it loses less.
//   - Metadata (create, unlink, rename, mkdir, truncate, chmod) goes to the
//     backing directory at once, as if the file system journaled metadata
//     synchronously. A real file system can lose a recent create or rename
//     in a crash unless the directory was fsynced; this layer does not
//     model that (badger fsyncs directories after creating and renaming
//     files, so the stronger model would not change what it must survive).
//   - fsync promotes a file's whole unsynced data, whatever range msync
//     named (FUSE FSYNC carries no range).
//
// It needs /dev/fuse and the right to mount (root); Available says whether
// this machine has them. It does no I/O outside the backing directory and
// the mount point.
package powerfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

const pageSize = 4096

// FS is a mounted power-loss file system.
type FS struct {
	server  *fuse.Server
	backing string
	mnt     string

	// mu is held for reading by every data operation and for writing by
	// PowerLoss, so the loss happens between operations, never inside one.
	mu    sync.RWMutex
	lost  bool
	nodes sync.Map // *node -> struct{}: every node, for PowerLoss

	statsMu sync.Mutex
	stats   Stats
}

// Stats counts what the file system saw since Mount.
type Stats struct {
	Writes       uint64 // WRITE requests (write(2) or dirty mmap pages)
	Fsyncs       uint64 // FSYNC requests on files
	SyncedBytes  uint64 // bytes moved to the backing directory by fsyncs
	DroppedBytes uint64 // unsynced bytes thrown away by PowerLoss
	LateWrites   uint64 // WRITE and FSYNC requests refused after PowerLoss
}

// Available reports whether FUSE mounts can be made here, and if not, why:
// it mounts and unmounts an empty file system once.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("powerfs: mounting needs root")
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("powerfs: %w", err)
	}
	f.Close()
	backing, err := os.MkdirTemp("", "powerfs-probe-")
	if err != nil {
		return fmt.Errorf("powerfs: %w", err)
	}
	defer os.RemoveAll(backing)
	mnt, err := os.MkdirTemp("", "powerfs-probe-mnt-")
	if err != nil {
		return fmt.Errorf("powerfs: %w", err)
	}
	defer os.Remove(mnt)
	fs, err := Mount(backing, mnt)
	if err != nil {
		return err
	}
	return fs.Unmount()
}

// Mount serves backing at mnt (both existing directories) until PowerLoss
// or Unmount.
func Mount(backing, mnt string) (*FS, error) {
	f := &FS{backing: backing, mnt: mnt}
	lb, err := fs.NewLoopbackRoot(backing)
	if err != nil {
		return nil, fmt.Errorf("powerfs: loopback of %s: %w", backing, err)
	}
	root := &node{LoopbackNode: lb.(*fs.LoopbackNode), fs: f}
	f.nodes.Store(root, struct{}{})
	lb.(*fs.LoopbackNode).RootData.RootNode = root
	zero := time.Duration(0)
	server, err := fs.Mount(mnt, root, &fs.Options{
		// No attribute or entry caching: sizes come from the overlay.
		AttrTimeout:     &zero,
		EntryTimeout:    &zero,
		NegativeTimeout: &zero,
		MountOptions: fuse.MountOptions{
			FsName: "powerfs",
			Name:   "powerfs",
			// root: mount(2) and umount(2) directly; no fusermount
			// binary needed.
			DirectMountStrict: true,
			// Writeback caching stays off (the default): every write(2)
			// reaches the server, and mmap'd pages are written back by
			// the kernel as WRITE requests.
		},
	})
	if err != nil {
		return nil, fmt.Errorf("powerfs: mount %s: %w", mnt, err)
	}
	f.server = server
	return f, nil
}

// Stats returns the counters so far.
func (f *FS) Stats() Stats {
	f.statsMu.Lock()
	defer f.statsMu.Unlock()
	return f.stats
}

func (f *FS) count(fn func(*Stats)) {
	f.statsMu.Lock()
	fn(&f.stats)
	f.statsMu.Unlock()
}

// PowerLoss throws away every file's unsynced data, refuses every later
// write and fsync with EIO (the kernel may still write back dirty pages of
// the dead processes), and unmounts. Processes using the mount should be
// dead by then: their acknowledgements must all have happened before the
// loss.
func (f *FS) PowerLoss() error {
	f.mu.Lock()
	f.lost = true
	var dropped uint64
	f.nodes.Range(func(k, _ any) bool {
		n := k.(*node)
		n.mu.Lock()
		dropped += uint64(len(n.ov.pages)) * pageSize
		n.ov = overlay{}
		n.mu.Unlock()
		return true
	})
	f.mu.Unlock()
	f.count(func(s *Stats) { s.DroppedBytes += dropped })
	return f.Unmount()
}

// Unmount unmounts without losing anything beyond what PowerLoss already
// lost; unsynced data still in memory is dropped with the mount. If the
// mount stays busy (a file on it still open, in this process or another),
// it aborts the FUSE connection and detaches the mount, so that no process
// can hang on it later: this process serves the mount, and a process that
// exits with a file open on a mount whose server is gone waits forever.
func (f *FS) Unmount() error {
	var err error
	for range 20 { // the kernel may hold the mount busy briefly
		if err = f.server.Unmount(); err == nil {
			f.server.Wait()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	if aerr := abort(f.mnt); aerr != nil {
		return fmt.Errorf("powerfs: unmount %s: %w; abort: %w", f.mnt, err, aerr)
	}
	_ = unix.Unmount(f.mnt, unix.MNT_DETACH)
	return fmt.Errorf("powerfs: unmount %s: %w (connection aborted, mount detached)", f.mnt, err)
}

// abort aborts the FUSE connection serving mnt through the fusectl file
// system (mounting it if needed): every request on it fails from then on.
func abort(mnt string) error {
	const ctl = "/sys/fs/fuse/connections"
	ents, err := os.ReadDir(ctl)
	if err == nil && len(ents) == 0 {
		_ = unix.Mount("fusectl", ctl, "fusectl", 0, "")
	}
	dev, err := mountDev(mnt)
	if err != nil {
		return err
	}
	return os.WriteFile(fmt.Sprintf("%s/%d/abort", ctl, unix.Minor(dev)), []byte("1"), 0)
}

// mountDev reads mnt's device number from /proc/self/mountinfo (a stat of
// the mount point could wait on the file system itself).
func mountDev(mnt string) (uint64, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 || fields[4] != mnt {
			continue
		}
		var major, minor uint32
		if _, err := fmt.Sscanf(fields[2], "%d:%d", &major, &minor); err != nil {
			return 0, err
		}
		return unix.Mkdev(major, minor), nil
	}
	return 0, fmt.Errorf("%s is not mounted", mnt)
}

// node is a loopback node with the in-memory overlay of its file's
// unsynced pages.
type node struct {
	*fs.LoopbackNode
	fs *FS

	mu sync.Mutex
	ov overlay
}

var (
	_ fs.NodeWrapChilder = (*node)(nil)
	_ fs.NodeOpener      = (*node)(nil)
	_ fs.NodeCreater     = (*node)(nil)
	_ fs.NodeGetattrer   = (*node)(nil)
	_ fs.NodeSetattrer   = (*node)(nil)
	_ fs.NodeStatxer     = (*node)(nil)
	_ fs.NodeUnlinker    = (*node)(nil)
)

// WrapChild makes every node of the tree a *node.
func (n *node) WrapChild(_ context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	if lb, ok := ops.(*fs.LoopbackNode); ok {
		c := &node{LoopbackNode: lb, fs: n.fs}
		n.fs.nodes.Store(c, struct{}{})
		return c
	}
	return ops
}

// rdwr turns the access mode of open flags into O_RDWR: the overlay reads
// the backing file to fill a page on a partial write, and an fsync writes
// it, whatever mode the file was opened in (we run as root).
func rdwr(flags uint32) uint32 { return flags&^syscall.O_ACCMODE | syscall.O_RDWR }

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, _, errno := n.LoopbackNode.Open(ctx, rdwr(flags))
	if errno != 0 {
		return nil, 0, errno
	}
	h, errno := n.handle(fh)
	if errno != 0 {
		return nil, 0, errno
	}
	if flags&syscall.O_TRUNC != 0 {
		n.mu.Lock()
		n.ov.truncate(0)
		n.mu.Unlock()
	}
	return h, 0, 0
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	ino, fh, _, errno := n.LoopbackNode.Create(ctx, name, rdwr(flags), mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	child, ok := ino.Operations().(*node)
	if !ok {
		return nil, nil, 0, syscall.EIO
	}
	h, errno := child.handle(fh)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	// The backing file may be new or truncated: whatever the overlay held
	// for a node of the same inode number is stale.
	var st syscall.Stat_t
	if err := syscall.Fstat(h.fd, &st); err == nil {
		child.mu.Lock()
		child.ov.truncate(st.Size)
		child.mu.Unlock()
	}
	return ino, h, 0, 0
}

// handle turns the loopback's file handle into ours (the loopback's would
// write to the backing file directly).
func (n *node) handle(fh fs.FileHandle) (*handle, syscall.Errno) {
	lf, ok := fh.(*fs.LoopbackFile)
	if !ok {
		return nil, syscall.EIO
	}
	fd, ok := lf.PassthroughFd()
	if !ok {
		return nil, syscall.EIO
	}
	return &handle{n: n, lf: lf, fd: fd}, 0
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	if ch := n.EmbeddedInode().GetChild(name); ch != nil {
		if c, ok := ch.Operations().(*node); ok {
			c.mu.Lock()
			c.ov.truncate(0)
			c.mu.Unlock()
		}
	}
	return n.LoopbackNode.Unlink(ctx, name)
}

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if h, ok := f.(*handle); ok {
		return h.Getattr(ctx, out)
	}
	errno := n.LoopbackNode.Getattr(ctx, nil, out)
	out.Size = n.size(out.Size)
	return errno
}

func (n *node) Statx(ctx context.Context, f fs.FileHandle, flags, mask uint32, out *fuse.StatxOut) syscall.Errno {
	if h, ok := f.(*handle); ok {
		return h.Statx(ctx, flags, mask, out)
	}
	errno := n.LoopbackNode.Statx(ctx, nil, flags, mask, out)
	out.Size = n.size(out.Size)
	return errno
}

// size is the file's size as seen through the mount, given the backing
// file's.
func (n *node) size(backing uint64) uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return uint64(n.ov.size(int64(backing)))
}

// Setattr passes everything through to the backing file at once (see the
// package doc: metadata is not modelled as volatile); a size change also
// cuts the overlay.
func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	n.fs.mu.RLock()
	defer n.fs.mu.RUnlock()
	if sz, ok := in.GetSize(); ok {
		n.mu.Lock()
		n.ov.truncate(int64(sz))
		n.mu.Unlock()
	}
	var lf fs.FileHandle
	if h, ok := f.(*handle); ok {
		lf = h.lf
	}
	if errno := n.LoopbackNode.Setattr(ctx, lf, in, out); errno != 0 {
		return errno
	}
	return n.Getattr(ctx, f, out)
}

// handle is an open file of a node. Reads and writes go through the node's
// overlay; Fsync moves the overlay to the backing file.
type handle struct {
	n  *node
	lf *fs.LoopbackFile // owns fd; closed by Release
	fd int
}

var (
	_ fs.FileReader    = (*handle)(nil)
	_ fs.FileWriter    = (*handle)(nil)
	_ fs.FileFsyncer   = (*handle)(nil)
	_ fs.FileFlusher   = (*handle)(nil)
	_ fs.FileReleaser  = (*handle)(nil)
	_ fs.FileGetattrer = (*handle)(nil)
	_ fs.FileStatxer   = (*handle)(nil)
)

func (h *handle) Read(_ context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.n.fs.mu.RLock()
	defer h.n.fs.mu.RUnlock()
	h.n.mu.Lock()
	defer h.n.mu.Unlock()
	n, err := h.n.ov.read(h.fd, dest, off)
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (h *handle) Write(_ context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	h.n.fs.mu.RLock()
	defer h.n.fs.mu.RUnlock()
	if h.n.fs.lost {
		h.n.fs.count(func(s *Stats) { s.LateWrites++ })
		return 0, syscall.EIO
	}
	h.n.mu.Lock()
	err := h.n.ov.write(h.fd, data, off)
	h.n.mu.Unlock()
	if err != nil {
		return 0, fs.ToErrno(err)
	}
	h.n.fs.count(func(s *Stats) { s.Writes++ })
	return uint32(len(data)), 0
}

func (h *handle) Fsync(_ context.Context, _ uint32) syscall.Errno {
	h.n.fs.mu.RLock()
	defer h.n.fs.mu.RUnlock()
	if h.n.fs.lost {
		h.n.fs.count(func(s *Stats) { s.LateWrites++ })
		return syscall.EIO
	}
	h.n.mu.Lock()
	n, err := h.n.ov.flush(h.fd)
	h.n.mu.Unlock()
	if err != nil {
		return fs.ToErrno(err)
	}
	h.n.fs.count(func(s *Stats) { s.Fsyncs++; s.SyncedBytes += uint64(n) })
	return 0
}

// Flush is close(2) of one descriptor: it promises nothing about
// durability, so the overlay stays.
func (h *handle) Flush(context.Context) syscall.Errno { return 0 }

func (h *handle) Release(ctx context.Context) syscall.Errno { return h.lf.Release(ctx) }

func (h *handle) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	errno := h.lf.Getattr(ctx, out)
	out.Size = h.n.size(out.Size)
	return errno
}

func (h *handle) Statx(ctx context.Context, flags, mask uint32, out *fuse.StatxOut) syscall.Errno {
	errno := h.lf.Statx(ctx, flags, mask, out)
	out.Size = h.n.size(out.Size)
	return errno
}

// overlay holds a file's unsynced pages. A page present in it is the
// file's current content for that page (copied from the backing file on
// its first write); end is the end of the furthest unsynced write, so the
// file's size is the larger of end and the backing file's size (truncates
// go to the backing file at once and cut the overlay).
type overlay struct {
	pages map[int64]*[pageSize]byte // by page index
	end   int64
}

func (o *overlay) size(backing int64) int64 { return max(backing, o.end) }

// page returns the overlay page idx, creating it from the backing file.
func (o *overlay) page(fd int, idx int64) (*[pageSize]byte, error) {
	if p, ok := o.pages[idx]; ok {
		return p, nil
	}
	p := new([pageSize]byte)
	if _, err := preadFull(fd, p[:], idx*pageSize); err != nil {
		return nil, err
	}
	if o.pages == nil {
		o.pages = make(map[int64]*[pageSize]byte)
	}
	o.pages[idx] = p
	return p, nil
}

func (o *overlay) write(fd int, data []byte, off int64) error {
	for done := 0; done < len(data); {
		pos := off + int64(done)
		p, err := o.page(fd, pos/pageSize)
		if err != nil {
			return err
		}
		done += copy(p[pos%pageSize:], data[done:])
	}
	o.end = max(o.end, off+int64(len(data)))
	return nil
}

// read fills dest from the overlay and the backing file, up to the file's
// size, and returns how many bytes it filled.
func (o *overlay) read(fd int, dest []byte, off int64) (int, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return 0, err
	}
	size := o.size(st.Size)
	if off >= size {
		return 0, nil
	}
	dest = dest[:min(int64(len(dest)), size-off)]
	for done := 0; done < len(dest); {
		pos := off + int64(done)
		idx, in := pos/pageSize, pos%pageSize
		n := min(int64(len(dest)-done), pageSize-in)
		if p, ok := o.pages[idx]; ok {
			copy(dest[done:done+int(n)], p[in:in+n])
		} else {
			clear(dest[done : done+int(n)])
			if _, err := preadFull(fd, dest[done:done+int(n)], pos); err != nil {
				return 0, err
			}
		}
		done += int(n)
	}
	return len(dest), nil
}

// flush writes the overlay to the backing file and empties it; it returns
// the bytes written.
func (o *overlay) flush(fd int) (int, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return 0, err
	}
	size := o.size(st.Size)
	written := 0
	for idx, p := range o.pages {
		start := idx * pageSize
		n := min(pageSize, size-start)
		if n <= 0 {
			continue
		}
		if _, err := unix.Pwrite(fd, p[:n], start); err != nil {
			return written, err
		}
		written += int(n)
	}
	// The backing directory is the test's "disk": the host does not
	// crash, so its own page cache is as good as durable.
	o.pages, o.end = nil, 0
	return written, nil
}

// truncate cuts the overlay at size (the backing file is truncated by the
// caller).
func (o *overlay) truncate(size int64) {
	for idx, p := range o.pages {
		start := idx * pageSize
		switch {
		case start >= size:
			delete(o.pages, idx)
		case start+pageSize > size:
			clear(p[size-start:])
		}
	}
	o.end = min(o.end, size)
}

// preadFull reads len(b) bytes at off, leaving zeros past the end of the
// file.
func preadFull(fd int, b []byte, off int64) (int, error) {
	done := 0
	for done < len(b) {
		n, err := unix.Pread(fd, b[done:], off+int64(done))
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return done, err
		}
		if n == 0 {
			break
		}
		done += n
	}
	return done, nil
}
