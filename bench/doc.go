// Package bench drives load against a quorumkv cluster and measures, in one
// run, what a choice of N, R and W costs in latency and buys in consistency.
//
// Latency is recorded per operation in HdrHistograms (YCSB core workloads A,
// B, C, D, F and write-only; uniform, zipfian or latest keys; closed loop, or
// open loop with latency measured from each operation's intended start so
// coordinated omission cannot hide stalls). Consistency is judged by an
// oracle (package bench/oracle) that trusts only what the client wrote, saw
// and was told, never the store's version vectors: every value carries its
// write's id, and a Checker adds the measures of Bailis et al.,
// "Probabilistically Bounded Staleness for Practical Partial Quorums" (VLDB
// 2012): stale reads, k-staleness, t-visibility, siblings per read, and,
// after a final read of every key at R=N, lost, indeterminate and
// resurrected writes. Sweep repeats a workload for several quorum settings;
// Report renders the results as a text table, JSON, and a self-contained
// HTML page with inline SVG charts, and lists the violations (Violations).
//
// The package does not know the node, the HTTP client or vclock: callers
// adapt them to the small seams Client and Faults. It starts no
// cluster and injects no latency itself; it parses the delay and fault
// schedule syntax (ParseDelay, ParseSchedule) and runs a schedule against a
// Faults hook.
//
// Concurrency: Run and Sweep drive Config.Concurrency goroutines and return
// only after all of them have stopped; Client implementations must be safe
// for concurrent use. Checker, Zipfian and the parsers are deterministic and
// do no I/O; a Checker is not safe for concurrent use (Run serialises it).
//
// Memory stays flat in the number of operations: histograms and counters,
// not lists of samples; per key the oracle keeps at most 3*History+8
// writes plus the live siblings and the writes in flight.
//
//	cfg := bench.DefaultConfig()
//	cfg.Workload, cfg.Duration = bench.WorkloadA, time.Minute
//	qs, _ := bench.ParseQuorums("3/1/1,3/2/2")
//	rep, err := bench.Sweep(ctx, client, cfg, qs)
//	if err == nil { rep.WriteText(os.Stdout) }
package bench
