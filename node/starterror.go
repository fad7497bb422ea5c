package node

import "github.com/quorumkv/quorumkv/internal/starterr"

// StartError is a failure of New that one setting explains (package
// starterr).
type StartError = starterr.StartError

// startErr wraps err as a *StartError for setting, unless it already is one.
var startErr = starterr.Wrap
