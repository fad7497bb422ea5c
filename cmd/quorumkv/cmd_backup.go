package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/quorumkv/quorumkv/backup"
	"github.com/quorumkv/quorumkv/client"
)

const backupDescription = `
Writes every key of the cluster to FILE with its whole sibling set and causal
history (tombstones included), in chunks that each carry a checksum. Each
partition is read from every reachable member (its primaries, and former
owners still handing it over) and the copies are merged, together with every
hint a member holds, so each acknowledged write is in the file whichever
replica acknowledged it. By default every primary of each partition must
answer; --min-primaries N-W+1 (2 with N=3, W=2) is the least that still
includes every write acknowledged by a quorum of primaries.

The file is written to FILE.partial and renamed to FILE once complete.
Progress goes to stderr. Exit codes: 0 done; 4 too few primaries of some
partition answered; 1 for anything else.`

const restoreDescription = `
Merges every key of a backup file into the cluster at --addr, which may have
any number of members and any ring: each key's set is merged into every
replica of the key (the replica merge that hinted handoff and anti-entropy
use), so a restore never drops a sibling and never overwrites a newer write,
and restoring twice changes nothing. Every replica of each key must take it;
a batch that could not reach all is tried again, then the restore stops.

A truncated or corrupted file, or one of a newer format, stops the restore
with an error saying where; what was merged before stays merged, and running
it again on a good copy merges the rest. --check reads and checks the file
without contacting a cluster. Exit codes: 0 done; 2 bad file; 4 a batch could
not reach every replica; 1 for anything else.`

func runBackup(e *env, args []string) int {
	fs, cf := newClientFlagSet(e, "backup", "--out FILE [flags]", backupDescription)
	out := fs.String("out", "", "write the backup to `FILE`")
	minPrimaries := fs.Int("min-primaries", 0, "primaries of each partition that must answer (default: all N)")
	workers := fs.Int("workers", 4, "partitions read at once")
	_, c, code := cf.open(e, args, 0, "backup takes no arguments (use --out FILE)")
	if c == nil {
		return code
	}
	defer c.Close()
	switch {
	case *out == "":
		return fail(e, exitBadInput, "backup: --out FILE is required")
	case *minPrimaries < 0 || *workers < 1:
		return fail(e, exitBadInput, "backup: --min-primaries must be at least 0 and --workers at least 1")
	}
	tmp := *out + ".partial"
	f, err := os.Create(tmp)
	if err != nil {
		return fail(e, exitInternal, "backup: %v", err)
	}
	defer os.Remove(tmp) // after the rename, a no-op
	src := client.NewBackupSource(c)
	var last atomic.Int64
	res, err := backup.Backup(e.ctx, src, f, backup.Options{
		MinPrimaries: *minPrimaries, Workers: *workers,
		Progress: func(p backup.Progress) {
			if throttled(&last) && p.PartitionsDone != p.Partitions {
				return
			}
			fmt.Fprintf(e.stderr, "backup: %d/%d partitions, %d keys, %.1f MB, %s\n",
				p.PartitionsDone, p.Partitions, p.Records, float64(p.Bytes)/1e6, p.Elapsed.Round(time.Millisecond))
		},
	})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, *out)
	}
	if err != nil {
		if errors.Is(err, backup.ErrTooFewPrimaries) {
			return fail(e, exitUnavailable, "backup: %v\n(each member is read at the HTTP address it advertises, as 'quorumkv members' lists them: "+
				"run the backup where those resolve, e.g. in Compose: docker-compose -f deploy/compose.yaml run --rm --user \"$(id -u)\" -v \"$PWD:/backup\" cli backup --out /backup/FILE)", err)
		}
		return cf.exitFor(e, fmt.Errorf("backup: %w", err))
	}
	for node, why := range res.Unreachable {
		fmt.Fprintf(e.stderr, "backup: %s did not answer (%s); its partitions came from the other primaries\n", node, why)
	}
	secs := res.Elapsed.Seconds()
	fmt.Fprintf(e.stdout, "backed up %d keys (%d hint copies merged in) from %d partitions to %s: %.1f MB in %s (%.0f keys/s, %.1f MB/s)\n",
		res.Keys, res.Hints, res.Partitions, *out, float64(res.Bytes)/1e6, res.Elapsed.Round(time.Millisecond),
		float64(res.Keys)/secs, float64(res.Bytes)/1e6/secs)
	return exitOK
}

func runRestore(e *env, args []string) int {
	fs, cf := newClientFlagSet(e, "restore", "--in FILE [flags]", restoreDescription)
	in := fs.String("in", "", "read the backup from `FILE`")
	check := fs.Bool("check", false, "only read and check the file; contact no cluster")
	workers := fs.Int("workers", 4, "batches merged at once")
	_, c, code := cf.open(e, args, 0, "restore takes no arguments (use --in FILE)")
	if c == nil {
		return code
	}
	defer c.Close()
	switch {
	case *in == "":
		return fail(e, exitBadInput, "restore: --in FILE is required")
	case *workers < 1:
		return fail(e, exitBadInput, "restore: --workers must be at least 1")
	}
	f, err := os.Open(*in)
	if err != nil {
		return fail(e, exitBadInput, "restore: %v", err)
	}
	defer f.Close()
	var sink backup.Sink
	if !*check {
		sink = client.NewBackupSink(c) // client.New contacted no node: --check stays offline
	}
	var last atomic.Int64
	res, err := backup.Restore(e.ctx, f, sink, backup.RestoreOptions{
		Workers: *workers,
		Progress: func(p backup.Progress) {
			if !throttled(&last) {
				fmt.Fprintf(e.stderr, "restore: %d keys merged, %.1f MB read, %s\n", p.Records, float64(p.Bytes)/1e6, p.Elapsed.Round(time.Millisecond))
			}
		},
	})
	name := filepath.Base(*in)
	if err != nil {
		if errors.Is(err, backup.ErrTruncated) || errors.Is(err, backup.ErrCorrupt) || errors.Is(err, backup.ErrVersion) || errors.Is(err, backup.ErrNotBackup) {
			return fail(e, exitBadInput, "restore %s: %v", name, err)
		}
		return cf.exitFor(e, fmt.Errorf("restore %s: %w", name, err))
	}
	secs := res.Elapsed.Seconds()
	verb := "merged"
	if *check {
		verb = "checked"
	}
	fmt.Fprintf(e.stdout, "%s %d keys from %s: %.1f MB in %s (%.0f keys/s, %.1f MB/s)\n",
		verb, res.Records, name, float64(res.Bytes)/1e6, res.Elapsed.Round(time.Millisecond),
		float64(res.Records)/secs, float64(res.Bytes)/1e6/secs)
	return exitOK
}

// throttled reports whether a progress line was printed less than a
// second ago (and, if not, notes one now).
func throttled(last *atomic.Int64) bool {
	now := time.Now().UnixNano()
	if l := last.Load(); now-l < int64(time.Second) || !last.CompareAndSwap(l, now) {
		return true
	}
	return false
}
