//go:build ignore

// pingpong measures the round trip of 100-byte messages between processes
// on 127.0.0.1, one message outstanding: the floor of one network hop as a
// Go program sees it (issue 16, docs/bench/floor.md). Run every process with
// GOMAXPROCS=1.
//
//	pingpong -role echo -listen 127.0.0.1:7001                  # B: answers each message
//	pingpong -role relay -listen 127.0.0.1:7002 -next 127.0.0.1:7001  # B: forwards to C, relays C's answer
//	pingpong -role client -target 127.0.0.1:7002 -n 20000       # A: sends, waits, times
//
// One hop is client -> echo; two hops in series (client -> coordinator ->
// replica and back) is client -> relay -> echo.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sort"
	"syscall"
	"time"
)

func main() {
	role := flag.String("role", "", "echo, relay or client")
	listen := flag.String("listen", "127.0.0.1:0", "listen address (echo, relay)")
	next := flag.String("next", "", "address the relay forwards to")
	target := flag.String("target", "", "address the client sends to")
	n := flag.Int("n", 20000, "round trips the client times")
	size := flag.Int("size", 100, "message size in bytes")
	flag.Parse()
	switch *role {
	case "echo", "relay":
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			log.Fatal(err)
		}
		for {
			c, err := ln.Accept()
			if err != nil {
				log.Fatal(err)
			}
			if *role == "echo" {
				go echo(c, *size)
			} else {
				go relay(c, *next, *size)
			}
		}
	case "client":
		client(*target, *n, *size)
	default:
		log.Fatal("-role echo|relay|client")
	}
}

func echo(c net.Conn, size int) {
	defer c.Close()
	buf := make([]byte, size)
	for {
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

func relay(c net.Conn, next string, size int) {
	defer c.Close()
	d, err := net.Dial("tcp", next)
	if err != nil {
		log.Print(err)
		return
	}
	defer d.Close()
	buf := make([]byte, size)
	for {
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		if _, err := d.Write(buf); err != nil {
			return
		}
		if _, err := io.ReadFull(d, buf); err != nil {
			return
		}
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func client(target string, n, size int) {
	c, err := net.Dial("tcp", target)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, size)
	for i := 0; i < 1000; i++ { // warm up
		c.Write(buf)
		io.ReadFull(c, buf)
	}
	rtt := make([]time.Duration, n)
	c0, t0 := cpu(), time.Now()
	for i := range rtt {
		s := time.Now()
		if _, err := c.Write(buf); err != nil {
			log.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			log.Fatal(err)
		}
		rtt[i] = time.Since(s)
	}
	el, cc := time.Since(t0), cpu()-c0
	sort.Slice(rtt, func(i, j int) bool { return rtt[i] < rtt[j] })
	q := func(p float64) float64 { return float64(rtt[int(p*float64(n-1))].Nanoseconds()) / 1e3 }
	fmt.Fprintf(os.Stdout, "n=%d p50_us=%.1f p99_us=%.1f mean_us=%.1f client_cpu_us_per_rt=%.1f\n",
		n, q(0.5), q(0.99), float64(el.Nanoseconds())/1e3/float64(n), float64(cc.Nanoseconds())/1e3/float64(n))
}
