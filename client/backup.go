package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/quorumkv/quorumkv/backup"
)

// The admin endpoints of backup and restore. Their bodies are backup
// streams (package backup reads and writes them); this package moves the
// bytes and leaves the format to it.

// BackupRecords opens node's stream of its stored records of partition p
// (GET /admin/backup/records). node is a member's HTTP address (host:port
// or URL), not necessarily one of the client's. The caller reads the body
// to its end chunk and closes it; ctx bounds the whole read.
func (c *Client) BackupRecords(ctx context.Context, node string, p uint32) (io.ReadCloser, error) {
	return c.backupStream(ctx, node, "/admin/backup/records?partition="+strconv.FormatUint(uint64(p), 10))
}

// BackupHints opens node's stream of every hint it holds for other nodes
// (GET /admin/backup/hints).
func (c *Client) BackupHints(ctx context.Context, node string) (io.ReadCloser, error) {
	return c.backupStream(ctx, node, "/admin/backup/hints")
}

func (c *Client) backupStream(ctx context.Context, node, path string) (io.ReadCloser, error) {
	base, err := baseURL(node)
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return nil, badRequest("build request: %v", err)
	}
	res, err := c.hc.Do(hr)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		defer res.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(res.Body, maxErrorBytes))
		return nil, errorOf(&response{status: res.StatusCode, header: res.Header, body: b, addr: base})
	}
	return res.Body, nil
}

// MergeReport is a node's answer to a merge of a backup stream.
type MergeReport struct {
	Node    string `json:"node"`
	Records int    `json:"records"`
	// Replicas is how many replica merges landed: Records x N.
	Replicas int `json:"replicas"`
}

// BackupMerge sends body, a backup stream, to a node that merges each
// record into every replica of its key (POST /admin/backup/merge). An
// error means some replica merges may not have landed; sending the same
// body again is harmless. Options: Node, Timeout.
func (c *Client) BackupMerge(ctx context.Context, body []byte, opts ...RequestOption) (*MergeReport, error) {
	req, err := newRequest(opInfo, opts)
	if err != nil {
		return nil, err
	}
	req.contentType = "application/x-quorumkv-backup"
	res, err := c.do(ctx, http.MethodPost, "/admin/backup/merge", req, body, MaxInfoBytes)
	if err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	if res.status != http.StatusOK {
		return nil, fmt.Errorf("merge: %w", errorOf(res))
	}
	var r MergeReport
	if err := json.Unmarshal(res.body, &r); err != nil {
		return nil, fmt.Errorf("merge: decode answer from %s: %w", res.addr, err)
	}
	return &r, nil
}

// NewBackupSource returns a backup.Source over c: the ring and members of
// the node c answers from, each member's streams read at the HTTP address it
// advertises. Layout must be called first (backup.Backup does).
func NewBackupSource(c *Client) backup.Source { return &backupSource{c: c} }

type backupSource struct {
	c     *Client
	addrs map[string]string // member id -> HTTP address
}

func (s *backupSource) Layout(ctx context.Context) (backup.Layout, error) {
	r, err := s.c.Ring(ctx)
	if err != nil {
		return backup.Layout{}, err
	}
	ms, err := s.c.Members(ctx)
	if err != nil {
		return backup.Layout{}, err
	}
	lay := backup.Layout{Partitions: r.Partitions, N: r.N}
	for _, o := range r.Owners {
		lay.Primaries = append(lay.Primaries, o.Primaries)
	}
	s.addrs = map[string]string{}
	for _, m := range ms {
		if m.HTTP != "" && m.State != "left" {
			s.addrs[m.ID] = m.HTTP
			lay.Nodes = append(lay.Nodes, m.ID)
		}
	}
	return lay, nil
}

func (s *backupSource) Records(ctx context.Context, node string, p uint32, fn func(backup.Record) error) error {
	return s.read(ctx, node, func(addr string) (io.ReadCloser, error) { return s.c.BackupRecords(ctx, addr, p) }, fn)
}

func (s *backupSource) Hints(ctx context.Context, node string, fn func(backup.Record) error) error {
	return s.read(ctx, node, func(addr string) (io.ReadCloser, error) { return s.c.BackupHints(ctx, addr) }, fn)
}

func (s *backupSource) read(ctx context.Context, node string, open func(addr string) (io.ReadCloser, error), fn func(backup.Record) error) error {
	addr, ok := s.addrs[node]
	if !ok {
		return fmt.Errorf("no HTTP address known for %s", node)
	}
	rc, err := open(addr)
	if err != nil {
		return err
	}
	defer rc.Close()
	return backup.ForEach(rc, fn)
}

// NewBackupSink returns a backup.Sink over c: POST /admin/backup/merge,
// spread over c's addresses in turn.
func NewBackupSink(c *Client) backup.Sink { return backupSink{c: c} }

type backupSink struct{ c *Client }

func (s backupSink) Merge(ctx context.Context, recs []backup.Record) error {
	var buf bytes.Buffer
	w, err := backup.NewWriter(&buf, backup.Meta{})
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := w.Add(r); err != nil {
			return err
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	_, err = s.c.BackupMerge(ctx, buf.Bytes(), Timeout(2*time.Minute))
	return err
}
