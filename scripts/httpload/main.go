package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/quorumkv/quorumkv/client"
	"github.com/quorumkv/quorumkv/scripts/internal/loadrun"
)

func main() {
	lf := loadrun.AddFlags(flag.CommandLine, "node HTTP addresses, comma-separated (used in round robin)",
		32, "concurrent clients", 2*time.Second, 10000, "key space; must be a multiple of -clients")
	op := flag.String("op", "put", "put or get")
	n := flag.Int("n", 3, "N")
	r := flag.Int("r", 2, "R (get)")
	w := flag.Int("w", 2, "W (put)")
	lf.Parse("httpload", func() bool {
		return *lf.Keys >= *lf.Clients && *lf.Keys%*lf.Clients == 0 && (*op == "put" || *op == "get")
	})
	c, err := client.New(strings.Split(*lf.Addr, ","), client.WithMaxIdleConnsPerHost(*lf.Clients))
	if err != nil {
		fmt.Fprintln(os.Stderr, "httpload:", err)
		os.Exit(2)
	}
	value := make([]byte, *lf.ValueSize)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	per := *lf.Keys / *lf.Clients
	res := loadrun.Run(lf.Config(), func(i int) func(context.Context) error {
		rng := rand.New(rand.NewPCG(uint64(i), 42))
		ctxs := make([]string, per)
		j := 0
		return func(ctx context.Context) error {
			defer func() { j++ }()
			if *op == "put" {
				k := j % per
				wr, err := c.Put(ctx, fmt.Sprintf("bench-%d", i*per+k), value,
					client.N(*n), client.W(*w), client.Context(ctxs[k]))
				if err == nil {
					ctxs[k] = wr.Context
				}
				return err
			}
			_, err := c.Get(ctx, fmt.Sprintf("bench-%d", rng.IntN(*lf.Keys)), client.N(*n), client.R(*r))
			if errors.Is(err, client.ErrNotFound) {
				err = nil // an unwritten key is still a served read
			}
			return err
		}
	})
	loadrun.Print("httpload", res, *op, *lf.Clients)
}
