// Command httpload drives the quorumkv HTTP API through package client with a
// fixed number of concurrent clients and reports throughput and latency
// percentiles. scripts/http-bench.sh runs it against a local cluster; it is a
// measuring aid, not the project's bench tool.
//
// Writes keep one value per key: each client owns a slice of the key space
// and sends the context its previous write of that key returned, so a key
// never accumulates siblings. Reads pick random keys among those written.
//
// Output, one line: op clients ops_per_sec p50_us p99_us p999_us ok errors.
package main
