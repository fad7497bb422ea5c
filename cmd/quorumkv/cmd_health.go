package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/quorumkv/quorumkv/internal/excerpt"
	"github.com/quorumkv/quorumkv/internal/netaddr"
	"github.com/quorumkv/quorumkv/node"
)

const healthDescription = `
Asks the node on this machine (or container) whether it is ready: GET
/readyz, which answers 200 once the node has joined a cluster, is on the
ring, its store takes writes and it is not shutting down. With --live it
asks /healthz instead (the process answers at all), as a liveness probe
does. Prints one line and exits 0 when the answer is 200, 1 otherwise
(not ready, no answer within --timeout, connection refused), as Docker's
HEALTHCHECK expects.

The node's address is --addr, else the agent's own HTTP listen address from
QUORUMKV_HTTP or the config file in QUORUMKV_CONFIG (a wildcard host such as
0.0.0.0 becomes 127.0.0.1), else 127.0.0.1:8080. QUORUMKV_ADDR, the client
commands' address, is deliberately not used: this command is about the
local node.`

// Exit codes of health, as Docker's HEALTHCHECK reads them: 0 healthy, 1
// unhealthy (2 is bad usage, as for every command).
const (
	healthOK  = exitOK
	healthBad = 1
)

func runHealth(e *env, args []string) int {
	fs := newFlagSet(e, "health", "[--live] [--addr HOST:PORT] [--timeout D]", healthDescription)
	addr := fs.String("addr", "", "the node's HTTP `address` (default: the agent's listen address, see above)")
	live := fs.Bool("live", false, "check liveness (/healthz) instead of readiness (/readyz)")
	timeout := fs.Duration("timeout", 2*time.Second, "give up after this long")
	if code, ok := parseFlagsOnly(e, fs, args); !ok {
		return code
	}
	if *timeout <= 0 {
		return fail(e, exitBadInput, "--timeout %v: want a positive duration such as 2s", *timeout)
	}
	target := *addr
	if target == "" {
		var err error
		if target, err = localHTTPAddr(e.getenv); err != nil {
			return fail(e, exitBadInput, "%v", err)
		}
	}
	path := "/readyz"
	if *live {
		path = "/healthz"
	}
	ctx, cancel := context.WithTimeout(e.ctx, *timeout)
	defer cancel()
	status, msg, err := healthGet(ctx, "http://"+target+path)
	if err != nil {
		fmt.Fprintf(e.stderr, "quorumkv health: %s%s: %v\n", target, path, err)
		return healthBad
	}
	if status != http.StatusOK {
		fmt.Fprintf(e.stderr, "quorumkv health: %s%s: %d %s\n", target, path, status, msg)
		return healthBad
	}
	fmt.Fprintf(e.stdout, "%s%s: %s\n", target, path, msg)
	return healthOK
}

// localHTTPAddr is the address the agent on this machine listens on for
// HTTP, from the same sources the agent reads (environment, then config
// file), with a wildcard host replaced by loopback.
func localHTTPAddr(getenv func(string) string) (string, error) {
	var file map[string]string
	if path := getenv("QUORUMKV_CONFIG"); path != "" {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("config file: %v", err)
		}
		file, err = parseConfigFile(f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("config file %s: %v", path, err)
		}
	}
	a := resolveSettings(nil, getenv, file)["http"]
	if a == "" {
		a = node.DefaultConfig().HTTPAddr
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return "", fmt.Errorf("agent http address %q: %v", a, err)
	}
	if netaddr.IsWildcardHost(host) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// healthGet fetches url and returns the status and a one-line summary of
// the body: "ready", or the node's reasons for not being ready.
func healthGet(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	c := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	res, err := c.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return 0, "", errors.New("no answer in time")
		}
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return 0, "", err
	}
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &body) == nil {
		switch {
		case body.Error != "":
			msg = body.Error
		case body.Status != "":
			msg = body.Status
		}
	}
	return res.StatusCode, excerpt.Of(msg, 300), nil
}
