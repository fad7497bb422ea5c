// Package tlsconf builds the TLS configurations of quorumkv's client
// ports (HTTPS and RESP over TLS) and of its clients, and writes a CA and
// a node certificate for trying TLS out.
//
// A Reloader loads a certificate and key (--tls-cert, --tls-key) and,
// optionally, a CA whose certificates clients must present
// (--tls-client-ca). Its ServerConfig serves TLS 1.2 and 1.3 with Go's
// default cipher suites (ECDHE key exchange and AEAD ciphers only for TLS
// 1.2); every handshake uses the files' contents as of the last successful
// load, and Reload (on SIGHUP) re-reads them, keeping the previous ones when
// the new files are bad. ClientConfig trusts a CA file (--cacert) instead
// of the system's roots, and can present a client certificate.
//
// Init writes DIR/ca.pem, DIR/node.pem and DIR/node-key.pem: an ECDSA
// P-256 CA and one certificate for the given hosts, signed by it (like
// `consul tls ca create` followed by `consul tls cert create`). The CA's
// key is not kept, so nothing else can ever be signed by that CA.
//
// Errors name the file and what is wrong with it. The package does no
// logging. A Reloader is safe for concurrent use.
package tlsconf
