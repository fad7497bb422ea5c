package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/quorumkv/quorumkv/scripts/internal/loadrun"
)

func main() {
	lf := loadrun.AddFlags(flag.CommandLine, "the node's HTTP or RESP address",
		50, "concurrent clients, one connection each", time.Second, 100000, "key space (keys key:0 .. key:keys-1, as redis-benchmark -r)")
	proto := flag.String("proto", "http", "http or resp")
	op := flag.String("op", "set", "set or get")
	httpClient := flag.String("http-client", "raw", "the HTTP client: raw (one connection read and written "+
		"in place, as lean as the RESP client) or nethttp (net/http's Client)")
	every := flag.Duration("report", 0, "also print a line per interval of this length (0: none): "+
		"interval elapsed_s ops/s p50_us p99_us ok errors")
	cpuProfile := flag.String("cpuprofile", "", "write the client's CPU profile over the whole run to this file")
	lf.Parse("kvload", func() bool {
		return (*op == "set" || *op == "get") && (*proto == "http" || *proto == "resp") &&
			(*httpClient == "raw" || *httpClient == "nethttp")
	})
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "kvload:", err)
			os.Exit(1)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	value := bytes.Repeat([]byte{'x'}, *lf.ValueSize)
	cfg := lf.Config()
	cfg.Every, cfg.Report = *every, func(iv loadrun.Interval) {
		fmt.Printf("interval %.0f %.0f %d %d %d %d\n", iv.Elapsed.Seconds(), iv.OpsPerSec, iv.P50, iv.P99, iv.OK, iv.Errors)
	}
	res := loadrun.Run(cfg, func(i int) func(context.Context) error {
		var do func(key string) error
		switch {
		case *proto == "http" && *httpClient == "raw":
			do = newRawHTTP(*lf.Addr, *op, value)
		case *proto == "http":
			do = newHTTP(*lf.Addr, *op, value)
		default:
			c, err := newRESP(*lf.Addr, *op, value)
			if err != nil {
				fmt.Fprintln(os.Stderr, "kvload:", err)
				os.Exit(1)
			}
			do = c
		}
		rng := rand.New(rand.NewPCG(uint64(i), 42))
		return func(context.Context) error { return do("key:" + strconv.Itoa(rng.IntN(*lf.Keys))) }
	})
	loadrun.Print("kvload", res, *proto, *op, *lf.Clients)
}

// newHTTP returns a net/http client of its own keep-alive connection that
// runs op on a key over HTTP (-http-client=nethttp). Its Transport adds a
// read and a write goroutine per connection and channel hand-offs per
// request, CPU taken from the server when both share the machine.
func newHTTP(addr, op string, value []byte) func(key string) error {
	hc := &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, DisableCompression: true,
	}}
	base := "http://" + addr + "/kv/"
	return func(key string) error {
		var req *http.Request
		var err error
		if op == "set" {
			req, err = http.NewRequest(http.MethodPut, base+key, bytes.NewReader(value))
			if err == nil {
				req.Header.Set("X-Quorumkv-Overwrite", "true")
			}
		} else {
			req, err = http.NewRequest(http.MethodGet, base+key, nil)
		}
		if err != nil {
			return err
		}
		res, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if err != nil {
			return err
		}
		return checkStatus(op, key, res.StatusCode)
	}
}

// newRawHTTP is newHTTP over rawHTTP: the same requests (but for
// net/http's User-Agent and Accept-Encoding headers, which quorumkv
// ignores) with a lean client.
func newRawHTTP(addr, op string, value []byte) func(key string) error {
	c := &rawHTTP{addr: addr}
	return func(key string) error {
		var status int
		var err error
		if op == "set" {
			status, err = c.do(http.MethodPut, "/kv/", key, "X-Quorumkv-Overwrite: true\r\n", value)
		} else {
			status, err = c.do(http.MethodGet, "/kv/", key, "", nil)
		}
		if err != nil {
			return err
		}
		return checkStatus(op, key, status)
	}
}

// checkStatus says whether status answers op well: 204 for a PUT, 200 or
// 404 (absent) for a GET.
func checkStatus(op, key string, status int) error {
	switch {
	case op == "set" && status == http.StatusNoContent:
	case op == "get" && (status == http.StatusOK || status == http.StatusNotFound):
	default:
		return fmt.Errorf("%s %s: status %d", op, key, status)
	}
	return nil
}

// newRESP returns a client of its own connection that runs op on a key
// over RESP (one command at a time, as redis-benchmark -P 1).
func newRESP(addr, op string, value []byte) (func(key string) error, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	rd := bufio.NewReader(nc)
	var buf []byte
	return func(key string) error {
		buf = buf[:0]
		if op == "set" {
			buf = append(buf, "*3\r\n$3\r\nSET\r\n"...)
		} else {
			buf = append(buf, "*2\r\n$3\r\nGET\r\n"...)
		}
		buf = appendBulk(buf, key)
		if op == "set" {
			buf = appendBulk(buf, string(value))
		}
		if _, err := nc.Write(buf); err != nil {
			return err
		}
		return readReply(rd)
	}, nil
}

func appendBulk(b []byte, s string) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, "\r\n"...)
	b = append(b, s...)
	return append(b, "\r\n"...)
}

// readReply reads one simple, error or bulk reply; an error reply is an
// error.
func readReply(rd *bufio.Reader) error {
	line, err := rd.ReadSlice('\n')
	if err != nil {
		return err
	}
	if len(line) < 3 {
		return errors.New("short reply")
	}
	switch line[0] {
	case '+', ':':
		return nil
	case '-':
		return errors.New(string(bytes.TrimSpace(line[1:])))
	case '$':
		n, err := strconv.Atoi(string(bytes.TrimSpace(line[1:])))
		if err != nil {
			return fmt.Errorf("bad bulk length %q", line)
		}
		if n < 0 {
			return nil // nil bulk: key absent
		}
		_, err = rd.Discard(n + 2)
		return err
	}
	return fmt.Errorf("unexpected reply %q", line)
}
