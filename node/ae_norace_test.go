//go:build !race

package node_test

const aeRace = false

const chaosRace = false
