package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/quorumkv/quorumkv/auth"
	"github.com/quorumkv/quorumkv/internal/devcluster"
	"github.com/quorumkv/quorumkv/tlsconf"
)

// devSecure makes dev --secure's credentials under cfg.Dir: a CA and a
// certificate for loopback (DIR/tls), and an admin token whose hash goes to
// DIR/tokens; the agents get --tls-cert, --tls-key and --tokens, and the
// cluster's own checks the CA and the token.
func devSecure(cfg *devcluster.Config) error {
	tdir := filepath.Join(cfg.Dir, "tls")
	// A kept --dir keeps its CA, so exported QUORUMKV_CACERT stays valid.
	if _, err := os.Stat(filepath.Join(tdir, tlsconf.CAFile)); err != nil {
		if err := tlsconf.Init(tdir, nil); err != nil {
			return err
		}
	}
	token, err := auth.GenerateToken(nil)
	if err != nil {
		return err
	}
	tokens := filepath.Join(cfg.Dir, "tokens")
	line := "# quorumkv dev --secure: NAME ROLE TOKEN (the token's SHA-256)\nadmin admin " + auth.HashToken(token) + "\n"
	if err := os.WriteFile(tokens, []byte(line), 0o600); err != nil {
		return err
	}
	cfg.AgentArgs = append(cfg.AgentArgs, "--tokens", tokens,
		"--tls-cert", filepath.Join(tdir, tlsconf.NodeFile), "--tls-key", filepath.Join(tdir, tlsconf.NodeKeyFile))
	cfg.CAFile, cfg.Token = filepath.Join(tdir, tlsconf.CAFile), token
	return nil
}

// devHelp is what dev --secure adds to the printed examples.
type devHelp struct{ intro, exports, curl, redis string }

// devSecureHelp returns the credentials' part of dev's examples: none
// without --secure.
func devSecureHelp(cfg devcluster.Config) devHelp {
	if cfg.Token == "" {
		return devHelp{}
	}
	return devHelp{
		intro:   fmt.Sprintf("Secure: HTTPS and RESP over TLS (CA %s), an admin token on every call, a cluster secret between nodes.\n", cfg.CAFile),
		exports: fmt.Sprintf("  export QUORUMKV_CACERT=%s\n  export QUORUMKV_TOKEN=%s\n", cfg.CAFile, cfg.Token),
		curl:    `--cacert "$QUORUMKV_CACERT" -H "Authorization: Bearer $QUORUMKV_TOKEN" `,
		redis:   `--tls --cacert "$QUORUMKV_CACERT" --user admin --pass "$QUORUMKV_TOKEN" `,
	}
}
