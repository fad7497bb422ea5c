// Command quorumkv is the one quorumkv binary: it runs a peer (agent), a
// local cluster of peers (dev), and the client commands for people at a
// terminal (put, get, delete, ls, members, ring, status). Run `quorumkv help`.
package main
