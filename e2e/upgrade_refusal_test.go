package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/quorumkv/quorumkv/store"
)

// Issue 17: a node refuses what a newer, unknown release wrote or speaks,
// with a message naming both versions, and changes nothing. The newer
// release is faked by hand: a data directory whose storage format meta is
// bumped (written with badger directly, at the key the store's layout
// golden file pins), and a peer whose handshake offers protocol version 3.
func TestUpgradeRefusesNewerVersions(t *testing.T) {
	ports := addresses(t, 1)[0]
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	args := []string{"agent", "--node-id", "n1", "--data-dir", data, "--http", ports.HTTP,
		"--rpc", ports.RPC, "--gossip", ports.Gossip, "--profile", "local"}
	env := append(cleanEnv(), "QUORUMKV_SECRET=e2e-secret")
	p := startProc(t, filepath.Join(dir, "first.log"), env, args...)
	waitForProcs(t, 30*time.Second, "the agent to answer /healthz", func() bool {
		status, _, _ := do(t, "GET", "http://"+ports.HTTP+"/healthz", nil, nil)
		return status == 200
	}, p)

	t.Run("peer of a newer protocol version", func(t *testing.T) {
		nc, err := net.DialTimeout("tcp", ports.RPC, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		hello, err := readHandshake(nc)
		if err != nil || len(hello) != 40 || string(hello[:3]) != "QKV" || hello[3] != 2 {
			t.Fatalf("server hello %x, %v: want a version 2 hello", hello, err)
		}
		// A version 3 client hello: magic, version, then a layout this
		// release cannot know.
		if err := writeHandshake(nc, append([]byte("QKV\x03"), make([]byte, 120)...)); err != nil {
			t.Fatal(err)
		}
		answer, err := readHandshake(nc)
		if err != nil || len(answer) != 1 || answer[0] != 3 {
			t.Fatalf("answer %x, %v: want status 3 (bad version)", answer, err)
		}
		waitForProcs(t, 10*time.Second, "the agent's log to name both versions", func() bool {
			return strings.Contains(p.log(), "speaks protocol version 3, this node version 2")
		}, p)
		t.Logf("agent: %s", lineWith(p.log(), "protocol version 3"))
	})

	if err := p.stop(20 * time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}

	t.Run("data directory of a newer storage format", func(t *testing.T) {
		formatKey := []byte("m" + "store.format") // store/testdata/golden/layout-v1.txt: meta name=FormatMetaName
		newer := store.FormatVersion + 1
		setFormat(t, data, formatKey, newer)
		p := startProc(t, filepath.Join(dir, "second.log"), env, args...)
		err := p.wait(30 * time.Second)
		var ee *exec.ExitError
		log := p.log()
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Fatalf("agent on a directory of format %d: %v, want a failed start\n%s", newer, err, log)
		}
		named := fmt.Sprintf("storage format version %d", newer)
		if !strings.Contains(log, named) || !strings.Contains(log, fmt.Sprintf("reads versions 1 to %d", store.FormatVersion)) {
			t.Fatalf("the refusal does not name both versions:\n%s", log)
		}
		t.Logf("agent: %s", lineWith(log, named))
		if got := readFormat(t, data, formatKey); got != newer {
			t.Fatalf("format meta %d after the refusal: the refused start wrote to the directory", got)
		}
	})
}

// lineWith returns the first line of log that contains s.
func lineWith(log, s string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// readHandshake and writeHandshake frame a transport handshake message:
// a uint32 big-endian length, then the payload (transport/doc.go).
func readHandshake(r io.Reader) ([]byte, error) {
	var lb [4]byte
	if _, err := io.ReadFull(r, lb[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(lb[:])
	if n > 1024 {
		return nil, errors.New("handshake message too long")
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}

func writeHandshake(w io.Writer, payload []byte) error {
	_, err := w.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(payload))), payload...))
	return err
}

func openBadger(t *testing.T, dir string) *badger.DB {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatalf("open %s with badger: %v", dir, err)
	}
	return db
}

// setFormat writes the storage format meta as a newer release would.
func setFormat(t *testing.T, dir string, key []byte, v uint32) {
	t.Helper()
	db := openBadger(t, dir)
	defer db.Close()
	if err := db.Update(func(txn *badger.Txn) error {
		if _, err := txn.Get(key); err != nil {
			return err // the store stamped the directory at its first open
		}
		return txn.Set(key, binary.BigEndian.AppendUint32(nil, v))
	}); err != nil {
		t.Fatal(err)
	}
}

func readFormat(t *testing.T, dir string, key []byte) uint32 {
	t.Helper()
	db := openBadger(t, dir)
	defer db.Close()
	var v []byte
	if err := db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		v, err = item.ValueCopy(nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(v) != 4 {
		t.Fatalf("format meta %x", v)
	}
	return binary.BigEndian.Uint32(v)
}
