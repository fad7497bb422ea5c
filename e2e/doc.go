// Package e2e tests quorumkv as real processes: TestMain builds the
// quorumkv binary once, and each test starts agents (or `quorumkv dev`) on
// 127.0.0.1 with free ports and data directories under t.TempDir(), talks to
// them over HTTP and through the CLI, kills them with SIGKILL or stops them
// with SIGTERM, and stops whatever is left in t.Cleanup. Clusters of agents
// are run by internal/devcluster, the process manager of `quorumkv dev` and
// the bench, so the tests and the tools start, restart and pause agents the
// same way. readme_test.go runs README.md's tour and compares its outputs.
//
// It deliberately tests only what a user can observe from outside: HTTP
// answers, exit codes, printed output, processes. In-process clusters with
// scripted faults live in node/nodetest.
//
// Under go test -race (as CI runs it) the binary is built with -race too,
// so the agents are race-checked (QUORUMKV_E2E_RACE=0 or 1 overrides).
//
// Waits are polls on a condition with a deadline, never fixed sleeps. The
// package has no non-test code besides this comment.
package e2e
