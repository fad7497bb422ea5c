// Command kvload drives one quorumkv node with the same closed-loop load
// over either client front, HTTP (/kv/{key}) or RESP, so that the two
// fronts' throughput can be compared with the same client and the same
// concurrency: -clients connections (kept alive), each sending one request
// and waiting for its answer, SET/PUT or GET of -value-size bytes over
// -keys random keys.
//
// A SET is sent as an overwrite on both fronts (RESP SET; HTTP PUT with
// X-Quorumkv-Overwrite: true), so both run the same coordinator path and
// the difference is the front's cost. The HTTP client (-http-client) is by
// default raw, as lean as the RESP one: one connection per client, a
// request written in one call from a reused buffer, the answer parsed in
// place (Content-Length, chunked or close-delimited bodies, Connection:
// close). -http-client=nethttp uses net/http's Client instead, whose
// per-request goroutine hand-offs cost the client, on a shared machine
// the server too, CPU. It prints one line:
//
//	proto op clients ops/s p50_us p99_us p999_us ok errors
//
// With -report, it also prints a line per interval of that length
// (bench/soak.sh reads them):
//
//	interval elapsed_s ops/s p50_us p99_us ok errors
//
// Used by bench/http-resp.sh and bench/soak.sh.
package main
