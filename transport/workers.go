package transport

import "sync"

// maxIdleWorkers bounds the handler goroutines kept waiting for work per
// transport; past it a worker exits when its request is done. Each keeps the
// stack it grew (tens of KiB), so this bounds that memory too.
const maxIdleWorkers = 128

// workerPool runs request handlers on goroutines that outlive one request.
// A fresh goroutine per request starts with a small stack and grows it
// (copying it each time) through the deep calls of a handler (the node's
// store, badger); a reused one has grown it already. Profiles of a 3-node
// write load showed that growth at about 8% of the nodes' CPU.
type workerPool struct {
	t    *TCP
	mu   sync.Mutex
	idle []*worker // LIFO: the most recently used stack is the warmest
}

type worker struct {
	work chan job // capacity 1: a send to a worker popped from idle never blocks
}

// job is one request for conn.serve: a struct rather than a closure, so
// handing it to a worker allocates nothing.
type job struct {
	c   *conn
	h   header
	req *frameBuf
	bc  *budgetCtx // the handler's ctx when the request carries a budget; the job holds one share
}

// run serves j on an idle worker, or on a new one. The caller must be a
// goroutine counted in t.wg (or hold another reason that Close is not
// waiting yet), as for any t.wg.Add.
func (p *workerPool) run(j job) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.work <- j
		return
	}
	p.mu.Unlock()
	p.t.wg.Add(1)
	go p.loop(&worker{work: make(chan job, 1)}, j)
}

func (p *workerPool) loop(w *worker, j job) {
	defer p.t.wg.Done()
	for {
		j.c.serve(j.h, j.req, j.bc)
		j = job{} // keep nothing of it while idle
		if !p.park(w) {
			return
		}
		// A plain receive, not a select with the transport's ctx: stop
		// sends an idle worker the empty job when the transport closes.
		if j = <-w.work; j.c == nil {
			return
		}
	}
}

// stop ends the idle workers. Call it once the transport's ctx is
// cancelled: a worker that parks after that exits instead (park).
func (p *workerPool) stop() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, w := range idle {
		w.work <- job{}
	}
}

// park puts w on the idle list, or reports false if it should exit.
func (p *workerPool) park(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) >= maxIdleWorkers || p.t.ctx.Err() != nil {
		return false
	}
	p.idle = append(p.idle, w)
	return true
}
