package main

import (
	"fmt"
	"path/filepath"

	"github.com/quorumkv/quorumkv/tlsconf"
)

const tlsDescription = `
tls init writes a new certificate authority and one certificate signed by
it, valid for the --hosts given (names, *.domain wildcards, IP addresses)
and usable both by the agents (--tls-cert, --tls-key, and --tls-client-ca
for client certificates) and by clients (--cacert, QUORUMKV_CACERT):

  DIR/ca.pem        the CA certificate: what clients trust
  DIR/node.pem      the certificate (CA-signed, 1 year)
  DIR/node-key.pem  its private key (mode 0600)

It refuses to overwrite a file. It is for trying TLS out and for small
clusters; a production cluster's certificates usually come from its own
CA (cert-manager, Vault, an internal PKI).`

func runTLS(e *env, args []string) int {
	if len(args) == 0 || args[0] != "init" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fs := newFlagSet(e, "tls", "init --dir DIR [--hosts H1,H2,...]", tlsDescription)
			fs.Usage()
			return exitOK
		}
		return fail(e, exitBadInput, "tls: want a subcommand: tls init --dir DIR [--hosts H1,H2,...]")
	}
	fs := newFlagSet(e, "tls init", "--dir DIR [--hosts H1,H2,...]", tlsDescription)
	dir := fs.String("dir", "", "directory to write ca.pem, node.pem and node-key.pem to; created if missing (required)")
	hosts := fs.String("hosts", "", "comma-separated names and IP addresses the certificate is valid for (default localhost,127.0.0.1,::1)")
	if code, ok := parseFlagsOnly(e, fs, args[1:]); !ok {
		return code
	}
	if *dir == "" {
		return fail(e, exitBadInput, "tls init: --dir is required")
	}
	if err := tlsconf.Init(*dir, splitList(*hosts)); err != nil {
		return fail(e, exitBadInput, "tls init: %v", err)
	}
	fmt.Fprintf(e.stdout, "wrote %s, %s and %s\n\nagents:  --tls-cert %s --tls-key %s\nclients: export QUORUMKV_CACERT=%s  (and https:// addresses)\n",
		filepath.Join(*dir, tlsconf.CAFile), filepath.Join(*dir, tlsconf.NodeFile), filepath.Join(*dir, tlsconf.NodeKeyFile),
		filepath.Join(*dir, tlsconf.NodeFile), filepath.Join(*dir, tlsconf.NodeKeyFile), filepath.Join(*dir, tlsconf.CAFile))
	return exitOK
}
