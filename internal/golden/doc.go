// Package golden pins byte encodings in testdata files, so that a refactor
// of a codec can be checked against the bytes the previous code produced.
//
// A golden file has one line per sample: its name, its length and either
// its hex (up to 512 bytes) or the SHA-256 of the bytes with the hex of
// their first 64 bytes. Run the tests with -update-golden to rewrite the
// files from the current code; never do so to make a failing test pass
// unless the encoding is meant to change (it is on the wire or on disk).
//
// It is a test helper: it calls t.Fatal and reads files.
package golden
