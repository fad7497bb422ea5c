//go:build ignore

// mini is the smallest replicated store that does the messages of a
// quorumkv write at N=3 W=2 (and read at R=2), so its cost is a floor for
// that process layout on this machine (issue 16, docs/bench/floor.md).
//
// Three processes. Each serves its replica port; process 1 (started with
// -resp and -peers) also speaks enough RESP for redis-benchmark's SET and
// GET and coordinates every request:
//
//   - SET: the key and value go to the two other processes over one
//     persistent TCP connection each (length-prefixed frames, one writer
//     goroutine per connection that writes all queued frames in one write,
//     one reader goroutine that hands replies to their request by id), the
//     process applies it to its own store, and the client is answered once
//     2 of the 3 applied (W=2).
//   - GET: the local value and both others are asked; the answer goes out
//     after 2 of 3 (R=2), the local value if there is one.
//
// Replicas read every frame a read brought in, apply them (with -store
// badger: the writes in one transaction), and queue the replies to their
// connection's writer goroutine, which coalesces them the same way.
//
// Left out on purpose (the report says so): versions/vector clocks and
// sibling merging, read repair, hints, a write-ahead log of its own,
// authentication and encryption, limits, membership, any error handling
// beyond "drop the connection".
//
//	mini -listen 127.0.0.1:7102 [-store badger -dir /tmp/x]          # replica
//	mini -listen 127.0.0.1:7101 -resp 127.0.0.1:7100 -peers 127.0.0.1:7102,127.0.0.1:7103
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"hash/maphash"
	"io"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	boptions "github.com/dgraph-io/badger/v4/options"
)

const (
	opSet = 1
	opGet = 2
)

// ---- the store: a sharded map, or badger ----

type store interface {
	// apply stores the writes of one batch (one badger transaction).
	apply(keys, vals [][]byte) error
	get(key []byte) ([]byte, bool)
}

type shard struct {
	mu sync.RWMutex
	m  map[string][]byte
}

type memStore struct {
	seed   maphash.Seed
	shards [64]shard
}

func newMem() *memStore {
	s := &memStore{seed: maphash.MakeSeed()}
	for i := range s.shards {
		s.shards[i].m = make(map[string][]byte)
	}
	return s
}

func (s *memStore) shard(k []byte) *shard { return &s.shards[maphash.Bytes(s.seed, k)&63] }

func (s *memStore) apply(keys, vals [][]byte) error {
	for i, k := range keys {
		sh := s.shard(k)
		v := append([]byte(nil), vals[i]...)
		sh.mu.Lock()
		sh.m[string(k)] = v
		sh.mu.Unlock()
	}
	return nil
}

func (s *memStore) get(k []byte) ([]byte, bool) {
	sh := s.shard(k)
	sh.mu.RLock()
	v, ok := sh.m[string(k)]
	sh.mu.RUnlock()
	return v, ok
}

type badgerStore struct{ db *badger.DB }

func newBadger(dir string) *badgerStore {
	// As quorumkv's store opens it (store/options.go), SyncWrites off.
	o := badger.DefaultOptions(dir).
		WithSyncWrites(false).
		WithLogger(nil).
		WithMetricsEnabled(false).
		WithDetectConflicts(false).
		WithNumVersionsToKeep(1).
		WithIndexCacheSize(0).
		WithCompression(boptions.None).
		WithNumGoroutines(2)
	db, err := badger.Open(o)
	if err != nil {
		log.Fatal(err)
	}
	return &badgerStore{db: db}
}

func (s *badgerStore) apply(keys, vals [][]byte) error {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	for i, k := range keys {
		// badger keeps the slices until the commit: they must not be reused before it returns.
		if err := txn.Set(k, vals[i]); err != nil {
			return err
		}
	}
	return txn.Commit()
}

func (s *badgerStore) get(k []byte) (v []byte, ok bool) {
	_ = s.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(k)
		if err != nil {
			return err
		}
		v, err = it.ValueCopy(nil)
		ok = err == nil
		return err
	})
	return v, ok
}

// ---- frames ----
// request: u32 len | u64 id | u8 op | u16 keylen | key | value
// reply:   u32 len | u64 id | u8 status (1 found/ok, 0 not found) | value

func appendReq(b []byte, id uint64, op byte, key, val []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(8+1+2+len(key)+len(val)))
	b = binary.BigEndian.AppendUint64(b, id)
	b = append(b, op)
	b = binary.BigEndian.AppendUint16(b, uint16(len(key)))
	b = append(b, key...)
	return append(b, val...)
}

func appendReply(b []byte, id uint64, status byte, val []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(8+1+len(val)))
	b = binary.BigEndian.AppendUint64(b, id)
	b = append(b, status)
	return append(b, val...)
}

// readFrame reads one frame body into buf (grown as needed).
func readFrame(r *bufio.Reader, buf []byte) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(h[:]))
	if n < 9 || n > 1<<24 {
		return nil, errors.New("bad frame")
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err := io.ReadFull(r, buf)
	return buf, err
}

// frameReady says whether a whole frame is already buffered.
func frameReady(r *bufio.Reader) bool {
	if r.Buffered() < 4 {
		return false
	}
	h, _ := r.Peek(4)
	return r.Buffered() >= 4+int(binary.BigEndian.Uint32(h))
}

// coalescer: frames queued by many goroutines, written by one goroutine,
// everything queued since its last write in one write.
type coalescer struct {
	mu    sync.Mutex
	buf   []byte
	spare []byte
	kick  chan struct{}
}

func newCoalescer(c net.Conn) *coalescer {
	w := &coalescer{kick: make(chan struct{}, 1)}
	go func() {
		for range w.kick {
			w.mu.Lock()
			b := w.buf
			w.buf = w.spare[:0]
			w.mu.Unlock()
			if len(b) > 0 {
				if _, err := c.Write(b); err != nil {
					c.Close()
					return
				}
			}
			w.spare = b
		}
	}()
	return w
}

func (w *coalescer) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// ---- replica side ----

func serveReplica(ln net.Listener, st store) {
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go replicaConn(c, st)
	}
}

func replicaConn(c net.Conn, st store) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	w := newCoalescer(c)
	defer close(w.kick)
	var (
		frames     [][]byte
		free       [][]byte
		keys, vals [][]byte
		ids        []uint64
		gets       []int
		replies    []byte
	)
	for {
		// One read's worth of frames: block for the first, then take
		// those already buffered.
		frames = frames[:0]
		for len(frames) == 0 || frameReady(r) {
			var b []byte
			if n := len(free); n > 0 {
				b, free = free[n-1], free[:n-1]
			}
			f, err := readFrame(r, b)
			if err != nil {
				return
			}
			frames = append(frames, f)
		}
		keys, vals, ids, gets = keys[:0], vals[:0], ids[:0], gets[:0]
		for i, f := range frames {
			id := binary.BigEndian.Uint64(f)
			kl := int(binary.BigEndian.Uint16(f[9:]))
			if 11+kl > len(f) {
				return
			}
			if f[8] == opSet {
				keys = append(keys, f[11:11+kl])
				vals = append(vals, f[11+kl:])
				ids = append(ids, id)
			} else {
				gets = append(gets, i)
			}
		}
		if len(keys) > 0 {
			if err := st.apply(keys, vals); err != nil {
				log.Print(err)
				return
			}
		}
		replies = replies[:0]
		for _, id := range ids {
			replies = appendReply(replies, id, 1, nil)
		}
		for _, i := range gets {
			f := frames[i]
			kl := int(binary.BigEndian.Uint16(f[9:]))
			v, ok := st.get(f[11 : 11+kl])
			s := byte(0)
			if ok {
				s = 1
			}
			replies = appendReply(replies, binary.BigEndian.Uint64(f), s, v)
		}
		w.mu.Lock()
		w.buf = append(w.buf, replies...)
		w.mu.Unlock()
		w.wake()
		free = append(free, frames...)
	}
}

// ---- coordinator side ----

type result struct {
	ok  bool
	val []byte
}

type call struct{ ch chan result } // room for all three answers: late ones never block

type peer struct {
	w    *coalescer
	mu   sync.Mutex
	pend map[uint64]*call
}

func dialPeer(addr string) *peer {
	var c net.Conn
	var err error
	for i := 0; i < 100; i++ {
		if c, err = net.Dial("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		log.Fatal(err)
	}
	p := &peer{w: newCoalescer(c), pend: make(map[uint64]*call)}
	go func() {
		r := bufio.NewReaderSize(c, 64<<10)
		var buf []byte
		for {
			f, err := readFrame(r, buf)
			if err != nil {
				log.Fatal("peer ", addr, ": ", err)
			}
			buf = f
			id := binary.BigEndian.Uint64(f)
			p.mu.Lock()
			cl := p.pend[id]
			delete(p.pend, id)
			p.mu.Unlock()
			if cl == nil {
				continue
			}
			res := result{ok: f[8] == 1}
			if len(f) > 9 {
				res.val = append([]byte(nil), f[9:]...)
			}
			cl.ch <- result(res)
		}
	}()
	return p
}

func (p *peer) send(id uint64, op byte, key, val []byte, cl *call) {
	p.mu.Lock()
	p.pend[id] = cl
	p.mu.Unlock()
	p.w.mu.Lock()
	p.w.buf = appendReq(p.w.buf, id, op, key, val)
	p.w.mu.Unlock()
	p.w.wake()
}

// groupCommit batches the coordinator's own writes (one per client
// connection at a time) into one transaction, as quorumkv's group commit.
type groupCommit struct {
	st store
	ch chan *call2
}

type call2 struct {
	key, val []byte
	done     chan result
}

func (g *groupCommit) run() {
	var batch []*call2
	var keys, vals [][]byte
	for c := range g.ch {
		batch = append(batch[:0], c)
	more:
		for {
			select {
			case c := <-g.ch:
				batch = append(batch, c)
			default:
				break more
			}
		}
		keys, vals = keys[:0], vals[:0]
		for _, c := range batch {
			keys = append(keys, c.key)
			vals = append(vals, c.val)
		}
		err := g.st.apply(keys, vals)
		for _, c := range batch {
			c.done <- result{ok: err == nil}
		}
	}
}

type coord struct {
	st     store
	gc     *groupCommit // nil: apply inline (the map)
	direct *badgerStore // -commit direct: txn.CommitWith per SET instead of gc
	peers  []*peer
	ids    atomic.Uint64
	getOne bool // -get one: a GET asks one other process, not both
}

func (co *coord) set(key, val []byte) bool {
	cl := &call{ch: make(chan result, 3)}
	for _, p := range co.peers {
		p.send(co.ids.Add(1), opSet, key, val, cl)
	}
	if co.direct != nil {
		// one badger transaction per SET, committed asynchronously: badger's
		// own writer goroutine batches concurrent commits.
		txn := co.direct.db.NewTransaction(true)
		k, v := append([]byte(nil), key...), append([]byte(nil), val...)
		if err := txn.Set(k, v); err != nil {
			txn.Discard()
			cl.ch <- result{}
		} else {
			txn.CommitWith(func(err error) { cl.ch <- result{ok: err == nil} })
		}
	} else if co.gc != nil {
		// the value is copied: the client's buffer is reused once it is answered,
		// and a late group commit could still hold it.
		c := &call2{key: append([]byte(nil), key...), val: append([]byte(nil), val...), done: cl.ch}
		co.gc.ch <- c
	} else {
		co.st.apply([][]byte{key}, [][]byte{val})
		cl.ch <- result{ok: true}
	}
	acks := 0
	for i := 0; i < 3 && acks < 2; i++ {
		if (<-cl.ch).ok {
			acks++
		}
	}
	return acks >= 2
}

func (co *coord) get(key []byte) ([]byte, bool) {
	cl := &call{ch: make(chan result, 3)}
	if co.getOne {
		// R=2 with the fewest messages: the local copy and one other (alternating).
		id := co.ids.Add(1)
		co.peers[id%2].send(id, opGet, key, nil, cl)
	} else {
		for _, p := range co.peers {
			p.send(co.ids.Add(1), opGet, key, nil, cl)
		}
	}
	v, ok := co.st.get(key)
	r := <-cl.ch // the second of R=2
	if !ok && r.ok {
		return r.val, true
	}
	return v, ok
}

// ---- RESP ----

func readLine(r *bufio.Reader) ([]byte, error) {
	l, err := r.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	if len(l) < 2 || l[len(l)-2] != '\r' {
		return nil, errors.New("bad line")
	}
	return l[:len(l)-2], nil
}

func respConn(c net.Conn, co *coord) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 16<<10)
	w := bufio.NewWriterSize(c, 16<<10)
	var args [][]byte
	var arena []byte
	for {
		l, err := readLine(r)
		if err != nil || len(l) < 2 || l[0] != '*' {
			return
		}
		n, err := strconv.Atoi(string(l[1:]))
		if err != nil || n < 1 || n > 64 {
			return
		}
		args, arena = args[:0], arena[:0]
		offs := make([]int, 0, 8)
		for i := 0; i < n; i++ {
			l, err := readLine(r)
			if err != nil || len(l) < 2 || l[0] != '$' {
				return
			}
			m, err := strconv.Atoi(string(l[1:]))
			if err != nil || m < 0 || m > 1<<20 {
				return
			}
			s := len(arena)
			if cap(arena)-s < m+2 {
				na := make([]byte, s, 2*cap(arena)+m+2)
				copy(na, arena)
				arena = na
			}
			arena = arena[:s+m+2]
			if _, err := io.ReadFull(r, arena[s:]); err != nil {
				return
			}
			arena = arena[:s+m]
			offs = append(offs, s, s+m)
		}
		for i := 0; i < len(offs); i += 2 {
			args = append(args, arena[offs[i]:offs[i+1]])
		}
		switch cmd := strings.ToUpper(string(args[0])); {
		case cmd == "SET" && len(args) >= 3:
			if co.set(args[1], args[2]) {
				w.WriteString("+OK\r\n")
			} else {
				w.WriteString("-ERR quorum\r\n")
			}
		case cmd == "GET" && len(args) == 2:
			if v, ok := co.get(args[1]); ok {
				w.WriteString("$")
				w.WriteString(strconv.Itoa(len(v)))
				w.WriteString("\r\n")
				w.Write(v)
				w.WriteString("\r\n")
			} else {
				w.WriteString("$-1\r\n")
			}
		case cmd == "PING":
			w.WriteString("+PONG\r\n")
		case cmd == "CONFIG":
			w.WriteString("*0\r\n")
		default:
			w.WriteString("-ERR unknown command\r\n")
		}
		if r.Buffered() == 0 {
			if w.Flush() != nil {
				return
			}
		}
	}
}

func main() {
	listen := flag.String("listen", "", "replica address (frames)")
	respAddr := flag.String("resp", "", "RESP address (process 1 only)")
	peers := flag.String("peers", "", "the two other processes' replica addresses (process 1 only)")
	kind := flag.String("store", "mem", "mem or badger")
	dir := flag.String("dir", "", "badger directory")
	commit := flag.String("commit", "group", "process 1's own badger writes: group (one goroutine batches them into one txn) or direct (txn.CommitWith per SET)")
	getMode := flag.String("get", "both", "GET asks both other processes (both) or one (one); R=2 either way")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof here (profiling only)")
	flag.Parse()
	if *pprofAddr != "" {
		go http.ListenAndServe(*pprofAddr, nil)
	}
	var st store
	switch *kind {
	case "mem":
		st = newMem()
	case "badger":
		if *dir == "" {
			log.Fatal("-dir is needed with -store badger")
		}
		st = newBadger(*dir)
	default:
		log.Fatal("-store mem|badger")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	go serveReplica(ln, st)
	if *respAddr == "" {
		select {}
	}
	co := &coord{st: st, getOne: *getMode == "one"}
	if *kind == "badger" && *commit == "direct" {
		co.direct = st.(*badgerStore)
	} else if *kind == "badger" {
		co.gc = &groupCommit{st: st, ch: make(chan *call2, 4096)}
		go co.gc.run()
	}
	for _, a := range strings.Split(*peers, ",") {
		co.peers = append(co.peers, dialPeer(a))
	}
	rl, err := net.Listen("tcp", *respAddr)
	if err != nil {
		log.Fatal(err)
	}
	log.SetOutput(os.Stderr)
	for {
		c, err := rl.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go respConn(c, co)
	}
}
