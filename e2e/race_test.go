//go:build race

package e2e

// raceBuild: this test binary runs under the race detector, so TestMain
// builds the agents with -race too.
const raceBuild = true
