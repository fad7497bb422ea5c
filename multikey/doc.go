// Package multikey answers a multi-key command (RESP MGET, MSET, DEL,
// EXISTS) without holding every value at once: Run fetches the keys with
// bounded concurrency and bounded bytes, charged to the node's memory
// budget, and emits each reply in order as soon as it and every one
// before it are ready, so the caller streams the answer to the client
// while later keys are still being fetched.
//
// The attack it answers (issue 14): one 4.8 KB MGET naming 400 times a
// key with 11 siblings of 1 MiB made the node hold 400 picked values and
// 16 sets in flight, and killed a 4 GB node. Under Run one command holds
// at most Config.MaxBytes (16 MiB) plus the item next to emit, and every
// byte it holds is charged to the budget, so many such commands wait in
// the budget's line and are refused with a busy error instead.
//
// Costs are learned, not guessed: a command's first fetch runs alone (or
// reserves what an Estimator shared by all commands expects); later ones
// reserve the largest cost seen. The package does no I/O and knows nothing
// of RESP: Fetch and Emit are the caller's, which makes it testable with
// fakes. Emit runs on the caller's goroutine; Fetch on up to
// Config.Parallel goroutines that Run starts and always waits for.
//
//	err := multikey.Run(ctx, cfg, len(keys),
//		func(ctx context.Context, i int) (vclock.Value, multikey.Cost, error) {
//			set, err := read(ctx, keys[i])
//			v, _ := pick(set)
//			return v, multikey.Cost{Held: int64(len(v.Data)), Peak: siblings.Bytes(set)}, err
//		},
//		func(i int, v vclock.Value, err error) error {
//			// write element i (or its error) to the connection; flush when large
//		})
package multikey
