package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/quorumkv/quorumkv/client"
)

// printRingPlan: what is staged, what moves, balance and zones, loads
// before -> after, and what to run next; nothing staged says so; a zone
// guarantee that does not hold says why.
func TestPrintRingPlan(t *testing.T) {
	plan := &client.RingPlan{Node: "n1", Partitions: 64, N: 3,
		Joins:  []client.StagedJoin{{ID: "n4", Zone: "az1", By: "n4"}},
		Leaves: []string{"n2"}, MovedPartitions: 40, MovedReplicas: 42, IdealReplicas: 42, CoordinatorsChanged: 13,
		Bytes: 3 << 20, BytesNote: "estimated from n1's 48 partitions",
		Before: client.RingBalance{Members: 3, ReplicasMaxOverMean: 1, FirstMaxOverMean: 1.03, Zones: 3, ZoneGuarantee: true,
			PerMember: []client.MemberLoad{{ID: "n1", Zone: "az1", Replicas: 64, First: 22}, {ID: "n2", Zone: "az2", Replicas: 64, First: 21}}},
		After: client.RingBalance{Members: 3, ReplicasMaxOverMean: 1, FirstMaxOverMean: 1.03, Zones: 2,
			ZoneReason: "2 zone(s) for N=3: replicas cannot all be in distinct zones",
			PerMember:  []client.MemberLoad{{ID: "n1", Zone: "az1", Replicas: 32, IdealReplicas: 32, First: 11, IdealFirst: 10.7}, {ID: "n4", Zone: "az1", Replicas: 32, IdealReplicas: 32, First: 11, IdealFirst: 10.7}}},
	}
	var b bytes.Buffer
	printRingPlan(&b, "plan", plan)
	out := b.String()
	norm := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{
		"staged ring changes as n1 sees them: 1 join, 1 leave, 0 removes",
		"join n4 (zone az1, staged by n4)", "leave n2",
		"moves: 40 of 64 partitions, 42 replica copies (ideal 42.0, x1.00), 13 coordinators change",
		"bytes to copy: about 3.0 MiB (estimated from n1's 48 partitions)",
		"the zone guarantee does NOT hold: 2 zone(s) for N=3",
		"n1 az1 64 32 32.0 22 11 10.7", "n2 az2 64 - - 21 - -", "n4 az1 - 32 32.0 - 11 10.7",
		"quorumkv ring commit applies this",
	} {
		if !strings.Contains(norm, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	plan.Warnings = []string{"n2 is down: a leave needs the member itself"}
	printRingPlan(&b, "plan", plan)
	if !strings.Contains(b.String(), "WARNING: n2 is down: a leave needs the member itself\n") {
		t.Errorf("plan output lacks the warning:\n%s", b.String())
	}
	plan.Warnings = nil
	b.Reset()
	printRingPlan(&b, "plan", &client.RingPlan{Node: "n1"})
	if !strings.HasPrefix(b.String(), "nothing staged on n1's ring") {
		t.Errorf("empty plan: %q", b.String())
	}
	b.Reset()
	plan.Status = "committed 1 join and 1 leave"
	printRingPlan(&b, "commit", plan)
	if !strings.HasPrefix(b.String(), "committed 1 join and 1 leave\n") || strings.Contains(b.String(), "ring commit applies") {
		t.Errorf("commit output:\n%s", b.String())
	}
}

// Subcommand arguments are checked before any request.
func TestRingSubcommandArgs(t *testing.T) {
	for _, args := range [][]string{{"ring", "leave"}, {"ring", "remove", "a", "b"}, {"ring", "plan", "extra"}, {"ring", "commit", "now"}} {
		code, _, stderr := runCmd(t, nil, "", append(args, "--addr", "127.0.0.1:1")...)
		if code != exitBadInput || !strings.Contains(stderr, "ring "+args[1]+" takes") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}

// quorumkv ring with fewer zones than N says the zone guarantee does not
// hold, and why, and shows each member's zone.
func TestPrintRingFewerZones(t *testing.T) {
	r := &client.Ring{Node: "a", Partitions: 2, N: 3, Mode: "claim", Members: []string{"a", "b", "c"},
		Zones: map[string]string{"a": "az1", "b": "az2", "c": "az1"}, ZoneReason: "2 zone(s) for N=3: replicas cannot all be in distinct zones (at most 2 of a partition in one zone)",
		Owners: []client.Partition{{Partition: 0, Primaries: []string{"a", "b", "c"}}, {Partition: 1, Primaries: []string{"b", "c", "a"}}}}
	var b bytes.Buffer
	printRing(&b, r, false)
	norm := strings.Join(strings.Fields(b.String()), " ")
	for _, want := range []string{"zones: the guarantee does not hold: 2 zone(s) for N=3", "ZONE", "c az1"} {
		if !strings.Contains(norm, want) {
			t.Errorf("ring output lacks %q:\n%s", want, b.String())
		}
	}
}

// ring plan shows the plan's version and how to commit exactly it; ring
// commit takes that version or nothing, and refuses anything else before
// a request.
func TestRingCommitVersionArgs(t *testing.T) {
	var b bytes.Buffer
	printRingPlan(&b, "plan", &client.RingPlan{Node: "n1", Version: "00112233445566ff", Leaves: []string{"n2"}})
	if !strings.Contains(b.String(), "plan version 00112233445566ff: quorumkv ring commit 00112233445566ff applies this plan only") {
		t.Errorf("plan output lacks its version:\n%s", b.String())
	}
	for _, args := range [][]string{{"ring", "commit", "a", "b"}, {"ring", "commit", "00112233445566FF"}, {"ring", "commit", "0011223344556"}} {
		code, _, stderr := runCmd(t, nil, "", append(args, "--addr", "127.0.0.1:1")...)
		if code != exitBadInput || !strings.Contains(stderr, "ring commit takes at most one argument: the version of the plan") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
	// A well-formed version is sent (here to no node).
	if code, _, stderr := runCmd(t, nil, "", "ring", "commit", "00112233445566ff", "--addr", "127.0.0.1:1"); code != exitUnavailable {
		t.Errorf("ring commit VERSION to no node: exit %d, stderr %q", code, stderr)
	}
}
