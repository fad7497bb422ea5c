//go:build linux

package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Issue 14, slow clients and connection caps, against a real agent with
// the default paces (bodies and RESP commands at 1 KiB/s after 10 s of
// grace) and small caps given as flags: a body sent at 1 byte per 2 s and
// a half-sent 1 MiB SET are cut after about the grace (before: held for as
// long as the client liked); a silent RESP connection is closed after
// --resp-idle-timeout; past one source's share of the HTTP port its next
// connection is refused while another source is served.
func TestLimitsSlowClientsAndCaps(t *testing.T) {
	as := cluster(t, 1, withRESP, withArgs("--max-http-conns", "16", "--max-conns-per-source", "4", "--resp-idle-timeout", "2s"))
	a := as[0]

	var wg sync.WaitGroup
	var bodyTook, setTook time.Duration
	var bodyErr, setErr error
	start := time.Now()
	wg.Add(2)
	go func() { // a body at 1 byte per 2 s
		defer wg.Done()
		c, err := net.DialTimeout("tcp", a.http, 5*time.Second)
		if err != nil {
			bodyErr = err
			return
		}
		defer c.Close()
		fmt.Fprintf(c, "PUT /kv/slow HTTP/1.1\r\nHost: %s\r\nContent-Length: 1000\r\n\r\nx", a.http)
		done := make(chan struct{})
		defer close(done)
		go func() {
			for {
				if !sleepUnless(done, 2*time.Second) {
					return
				}
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
			}
		}()
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			bodyErr = err
			return
		}
		resp.Body.Close()
		bodyTook = time.Since(start)
		if resp.StatusCode != http.StatusRequestTimeout {
			bodyErr = fmt.Errorf("status %d, want 408", resp.StatusCode)
		}
	}()
	go func() { // a half-sent 1 MiB SET
		defer wg.Done()
		c, err := net.DialTimeout("tcp", a.resp, 5*time.Second)
		if err != nil {
			setErr = err
			return
		}
		defer c.Close()
		fmt.Fprintf(c, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%s", 1<<20, strings.Repeat("v", 4<<10))
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		got, err := io.ReadAll(c)
		setTook = time.Since(start)
		if err != nil || string(got) != "-ERR Protocol error: command too slow\r\n" {
			setErr = fmt.Errorf("read %q, %v", got, err)
		}
	}()

	// Meanwhile: a silent RESP connection is closed at the idle timeout.
	idle, err := net.DialTimeout("tcp", a.resp, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idleStart := time.Now()
	_ = idle.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadAll(idle); err != nil {
		t.Fatalf("idle RESP connection: %v, want closed by the agent", err)
	}
	if took := time.Since(idleStart); took < 2*time.Second || took > 5*time.Second {
		t.Fatalf("idle RESP connection closed after %v, want about 2s", took)
	}

	// And the per-source cap: 4 from 127.0.0.3 (a source nothing else
	// uses: the harness's health checks come from 127.0.0.1).
	from3 := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}, Timeout: 5 * time.Second}
	for range 4 {
		c, err := from3.Dial("tcp", a.http)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	if !refusedBy(t, "127.0.0.3", a.http) {
		t.Fatal("fifth connection from 127.0.0.3 over a per-source cap of 4 was not refused")
	}
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}, Timeout: 10 * time.Second}
	resp, err := other.Get("http://" + a.http + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz from 127.0.0.2 with 127.0.0.3 at its cap: %v %v", resp, err)
	}
	resp.Body.Close()

	wg.Wait()
	if bodyErr != nil || setErr != nil {
		t.Fatalf("slow body: %v; half-sent SET: %v", bodyErr, setErr)
	}
	// The grace is 10 s; the slack covers the deadline's re-arm (window/16)
	// and a loaded machine.
	for name, took := range map[string]time.Duration{"slow body": bodyTook, "half-sent SET": setTook} {
		if took < 9*time.Second || took > 14*time.Second {
			t.Errorf("%s cut after %v, want about 10 s", name, took)
		}
	}
	t.Logf("slow body cut after %v, half-sent SET after %v", bodyTook.Round(time.Millisecond), setTook.Round(time.Millisecond))
}

// refusedBy reports whether a connection from src to addr is closed by the
// server at once (reset during the dial, or EOF within 5 s).
func refusedBy(t *testing.T, src, addr string) bool {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return strings.Contains(err.Error(), "reset")
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(c)
	var ne net.Error
	return !errors.As(err, &ne) || !ne.Timeout()
}
