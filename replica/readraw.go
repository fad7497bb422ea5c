package replica

import "github.com/quorumkv/quorumkv/ring"

// ReadLocalRaw is ReadLocal as the set's encoding (vclock.Set.MarshalBinary),
// undecoded: nil when nothing is stored, else a copy of the stored set's
// bytes, the caller's to keep, which DecodeSet turns into ReadLocal's set.
// A copy costs a fraction of a decode, and a coordinator whose replicas
// agree compares the bytes instead of decoding them (quorum.RawReader).
// With hintFor, the record and the hint are synced and encoded, as
// ReadLocal syncs them.
func (r *Replica) ReadLocalRaw(hintFor string, k ring.Key) ([]byte, error) {
	if hintFor != "" {
		s, found, err := r.ReadLocal(hintFor, k)
		if err != nil || !found {
			return nil, err
		}
		return s.MarshalBinary()
	}
	var out []byte
	found, err := r.ViewSet("", k, false, func(set []byte) error {
		out = make([]byte, len(set)) // never nil: found
		copy(out, set)
		return nil
	})
	if err != nil || !found {
		return nil, err
	}
	return out, nil
}
