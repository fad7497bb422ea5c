package main

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/quorumkv/quorumkv/auth"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/tlsconf"
)

// agentSecurity applies the client-port defences (--tokens, --tls-*,
// --http-allowed-hosts, --cors-origins, --remove-min-down, --insecure),
// reading the token and certificate files once: a bad file is a start
// failure naming its flag. It returns the token file's warnings (a plain
// token in it). node.New applies protected mode.
func agentSecurity(vals map[string]string, cfg *node.Config) ([]string, error) {
	var warns []string
	s := &cfg.Security
	if path := vals["tokens"]; path != "" {
		a, w, err := auth.Load(path)
		if err != nil {
			return nil, fmt.Errorf("--tokens %s: %v", path, err)
		}
		s.Auth, warns = a, w
	}
	tc := tlsconf.ServerConfig{CertFile: vals["tls-cert"], KeyFile: vals["tls-key"], ClientCAFile: vals["tls-client-ca"]}
	if tc != (tlsconf.ServerConfig{}) {
		if err := tc.Validate(); err != nil {
			return nil, fmt.Errorf("--tls-cert, --tls-key, --tls-client-ca: %v", err)
		}
		r, err := tlsconf.NewReloader(tc)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert %s, --tls-key %s: %v", tc.CertFile, tc.KeyFile, err)
		}
		s.TLS = r
	}
	s.AllowedHosts = splitList(vals["http-allowed-hosts"])
	s.CORSOrigins = splitList(vals["cors-origins"])
	if v, ok := vals["remove-min-down"]; ok {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("--remove-min-down %q: want a duration such as 1m, or 0", v)
		}
		s.RemoveMinDown = d
	}
	if v, ok := vals["insecure"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("--insecure %q: want true or false", v)
		}
		s.Insecure = b
	}
	return warns, nil
}

// splitList splits a comma-separated setting, dropping blanks.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// warnInsecure logs, loudly, what --insecure let through.
func warnInsecure(log *slog.Logger, cfg node.Config) {
	if !cfg.Security.Insecure {
		return
	}
	c := cfg
	c.Security.Insecure = false
	if err := c.ProtectedModeError(); err != nil {
		log.Warn("INSECURE: started with --insecure although protected mode refuses this setup: anyone who reaches the port may read, write and take nodes off the ring", "refused_because", err.Error())
	}
}

// reloadSecurity re-reads the token file and the certificates (SIGHUP).
// A bad file keeps the old set in force.
func reloadSecurity(log *slog.Logger, s node.Security) {
	if s.Auth != nil {
		warns, err := s.Auth.Reload()
		if err != nil {
			log.Error("SIGHUP: token file not reloaded; the previous tokens stay in force", "err", err)
		} else {
			log.Info("SIGHUP: token file reloaded", "principals", s.Auth.Len(), "warnings", warns)
		}
	}
	if s.TLS != nil {
		if err := s.TLS.Reload(); err != nil {
			log.Error("SIGHUP: certificates not reloaded; the previous ones stay in force", "err", err)
		} else if leaf := s.TLS.Leaf(); leaf != nil {
			log.Info("SIGHUP: certificates reloaded", "subject", leaf.Subject.String(), "not_after", leaf.NotAfter)
		}
	}
	if s.Auth == nil && s.TLS == nil {
		log.Info("SIGHUP: nothing to reload (no --tokens, no --tls-cert)")
	}
}
