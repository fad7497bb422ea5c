// Package lifetime holds the goroutines of one component between its Start
// and its Close: whoever starts them stops them, and Close returns only
// once every one has ended.
//
// Example:
//
//	var g lifetime.Group
//	ctx := g.Start(parent) // cancelled by Close or with parent
//	g.Go(func() { loop(ctx) })
//	...
//	g.Close()
package lifetime
