package tlsconf

import (
	"crypto/tls"
	"path/filepath"
	"testing"
)

// BenchmarkHandshake: a full TLS handshake with the Reloader's config over
// 127.0.0.1 (client and server in this process), for the cost of a new
// client connection: TLS 1.3 and 1.2, with and without a client
// certificate. Resumption is off, so each is a full handshake.
func BenchmarkHandshake(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "tls")
	if err := Init(dir, nil); err != nil {
		b.Fatal(err)
	}
	for _, mtls := range []bool{false, true} {
		sc := ServerConfig{CertFile: filepath.Join(dir, NodeFile), KeyFile: filepath.Join(dir, NodeKeyFile)}
		cc := ClientConfig{CAFile: filepath.Join(dir, CAFile)}
		if mtls {
			sc.ClientCAFile = cc.CAFile
			cc.CertFile, cc.KeyFile = sc.CertFile, sc.KeyFile
		}
		r, err := NewReloader(sc)
		if err != nil {
			b.Fatal(err)
		}
		addr, _ := echoServer(b, r.ServerConfig())
		for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
			cfg, err := NewClientConfig(cc)
			if err != nil {
				b.Fatal(err)
			}
			cfg.MaxVersion, cfg.SessionTicketsDisabled = v, true
			name := map[uint16]string{tls.VersionTLS13: "tls1.3", tls.VersionTLS12: "tls1.2"}[v]
			if mtls {
				name += "+client-cert"
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := talk(b, addr, cfg); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
