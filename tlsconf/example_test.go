package tlsconf_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/quorumkv/quorumkv/tlsconf"
)

func Example() {
	dir, _ := os.MkdirTemp("", "tlsconf")
	defer os.RemoveAll(dir)
	if err := tlsconf.Init(dir, []string{"localhost", "127.0.0.1"}); err != nil {
		fmt.Println(err)
		return
	}
	// The agent: --tls-cert, --tls-key, --tls-client-ca.
	r, err := tlsconf.NewReloader(tlsconf.ServerConfig{
		CertFile:     filepath.Join(dir, tlsconf.NodeFile),
		KeyFile:      filepath.Join(dir, tlsconf.NodeKeyFile),
		ClientCAFile: filepath.Join(dir, tlsconf.CAFile),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	server := r.ServerConfig("h2", "http/1.1") // http.Server.TLSConfig
	// The CLI: --cacert, and a client certificate since the server asks.
	client, err := tlsconf.NewClientConfig(tlsconf.ClientConfig{
		CAFile:   filepath.Join(dir, tlsconf.CAFile),
		CertFile: filepath.Join(dir, tlsconf.NodeFile),
		KeyFile:  filepath.Join(dir, tlsconf.NodeKeyFile),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Leaf().DNSNames, r.RequiresClientCert(), server.MinVersion == client.MinVersion)
	fmt.Println(tlsconf.Init(dir, nil) != nil) // never overwrites
	// Output:
	// [localhost] true true
	// true
}
