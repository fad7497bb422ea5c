package devcluster

import (
	"net/http"
	"time"

	"github.com/quorumkv/quorumkv/tlsconf"
)

// httpClient is the client the cluster checks its agents with: plain, or
// TLS trusting Config.CAFile.
func (c Config) httpClient() (*http.Client, error) {
	tr := &http.Transport{Proxy: nil}
	if c.CAFile != "" {
		tc, err := tlsconf.NewClientConfig(tlsconf.ClientConfig{CAFile: c.CAFile})
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = tc
	}
	return &http.Client{Timeout: 2 * time.Second, Transport: tr}, nil
}

// Scheme is "https" for a cluster with Config.CAFile, else "http".
func (c *Cluster) Scheme() string {
	if c.cfg.CAFile != "" {
		return "https"
	}
	return "http"
}

// get sends GET path to the agent at addr with the cluster's token.
func (c *Cluster) get(addr, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(c.ctx, http.MethodGet, c.Scheme()+"://"+addr+path, nil)
	if err != nil {
		return nil, err
	}
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	return c.hc.Do(req)
}
