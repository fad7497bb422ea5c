package main

import "flag"

// registerSecurity adds --token and --cacert. Their defaults come from the
// environment but are not shown in the help (a token must not be printed).
func (f *clientFlags) registerSecurity(e *env, fs *flag.FlagSet) {
	f.token, f.cacert = e.getenv("QUORUMKV_TOKEN"), e.getenv("QUORUMKV_CACERT")
	fs.Func("token", "bearer `token` for nodes started with --tokens (env QUORUMKV_TOKEN; prefer the variable: flags show in ps)",
		func(v string) error { f.token = v; return nil })
	fs.Func("cacert", "PEM `file` of CA certificates to trust for https:// addresses (env QUORUMKV_CACERT), e.g. the ca.pem of `quorumkv tls init`",
		func(v string) error { f.cacert = v; return nil })
}
