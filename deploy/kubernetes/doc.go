// Package kubernetes holds quorumkv's Kubernetes manifests (the YAML files
// beside this one, and optional/) and, in its tests, their checks: every
// manifest decodes strictly into the Kubernetes API types (an unknown or
// misspelt field fails), and the objects agree with each other and with the
// agent (ports, labels and selectors, probes, volume mounts, environment
// variables the agent reads). No cluster is needed.
//
// It is a module of its own so that k8s.io/api and its dependencies stay
// out of the main module's dependency graph. Run its tests with
//
//	(cd deploy/kubernetes && go test ./...)
package kubernetes
