package node

import "github.com/quorumkv/quorumkv/internal/secretwatch"

// ErrSecretMismatch is wrapped by a join that failed because the seeds use
// another cluster secret, or none (package secretwatch tells).
var ErrSecretMismatch = secretwatch.ErrMismatch

// The gossip's watch for a cluster secret mismatch.
type (
	secretWatch  = secretwatch.Watch
	secretStatus = secretwatch.Status
)

var newSecretWatch = secretwatch.New

const (
	secretLogEvery = secretwatch.LogEvery
	secretRecent   = secretwatch.Recent
)
