// Command ferric-hostile plays a hostile client on the provisioning
// network against a running ferric-conductor and reports what it cost the
// server (its RSS from /proc when -pid is given):
//
//	ferric-hostile -mode heartbeat -addr 127.0.0.1:6385 -pid PID
//	    two POST /v1/heartbeat/{uuid} at 1.96 with a 60 MB [0,0,...] body
//	ferric-hostile -mode conns -addr 127.0.0.1:6385 -pid PID -n 1200
//	    -n keep-alive connections held idle from 127.0.0.1, then a request
//	    from 127.0.0.2, then how many held connections the server closed
//	    after 70 s
//
// It creates a fake-hardware node (noauth) for the heartbeat.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

type zeros struct{ n, i int }

func (z *zeros) Read(p []byte) (int, error) {
	w := 0
	for w < len(p) {
		switch {
		case z.i == 0:
			p[w] = '['
		case z.i == 2*z.n:
			p[w] = ']'
		case z.i > 2*z.n:
			return w, io.EOF
		case z.i%2 == 1:
			p[w] = '0'
		default:
			p[w] = ','
		}
		z.i++
		w++
	}
	return w, nil
}

func rss(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS") || strings.HasPrefix(l, "VmHWM") {
			out = append(out, strings.Join(strings.Fields(l), " "))
		}
	}
	return strings.Join(out, ", ")
}

func main() {
	mode := flag.String("mode", "heartbeat", "heartbeat or conns")
	addr := flag.String("addr", "127.0.0.1:6385", "")
	pid := flag.Int("pid", 0, "")
	n := flag.Int("n", 1200, "connections")
	flag.Parse()
	switch *mode {
	case "heartbeat":
		res, err := http.Post("http://"+*addr+"/v1/nodes", "application/json", strings.NewReader(`{"driver":"fake-hardware"}`))
		if err != nil {
			panic(err)
		}
		var node map[string]any
		json.NewDecoder(res.Body).Decode(&node)
		res.Body.Close()
		fmt.Println("before:", rss(*pid))
		for i := 0; i < 2; i++ {
			req, _ := http.NewRequest("POST", "http://"+*addr+"/v1/heartbeat/"+node["uuid"].(string), &zeros{n: 30 << 20})
			req.ContentLength = 60<<20 + 1
			req.Header.Set("X-OpenStack-Ironic-API-Version", "1.96")
			req.Header.Set("Content-Type", "application/json")
			start := time.Now()
			res, err = http.DefaultClient.Do(req)
			if err != nil {
				fmt.Println("request error:", err, "after", time.Since(start))
				continue
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			fmt.Printf("heartbeat %d: %d, %d bytes of answer, in %v; %s\n", i+1, res.StatusCode, len(b), time.Since(start).Round(time.Millisecond), rss(*pid))
		}
	case "conns":
		ok, unavailable, failed := 0, 0, 0
		var held []net.Conn
		for i := 0; i < *n; i++ {
			c, err := net.DialTimeout("tcp", *addr, 2*time.Second)
			if err != nil {
				failed++
				continue
			}
			c.SetDeadline(time.Now().Add(3 * time.Second))
			fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			switch {
			case err != nil:
				failed++
				c.Close()
			case res.StatusCode == 200:
				io.Copy(io.Discard, res.Body)
				ok++
				c.SetDeadline(time.Time{})
				held = append(held, c) // kept open, idle
			default:
				unavailable++
				c.Close()
			}
		}
		fmt.Printf("one client (127.0.0.1), %d connections: %d served and held idle, %d answered 503, %d failed\n", *n, ok, unavailable, failed)
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
		cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
		start := time.Now()
		res, err := cl.Get("http://" + *addr + "/v1")
		if err != nil {
			fmt.Println("another client (127.0.0.2): error", err, "after", time.Since(start).Round(time.Millisecond))
		} else {
			b, _ := io.ReadAll(res.Body)
			fmt.Printf("another client (127.0.0.2): %d (%d bytes) in %v\n", res.StatusCode, len(bytes.TrimSpace(b)), time.Since(start).Round(time.Millisecond))
		}
		fmt.Println("server:", rss(*pid))
		time.Sleep(70 * time.Second)
		alive := 0
		for _, c := range held {
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); err != nil && strings.Contains(err.Error(), "timeout") {
				alive++
			}
		}
		fmt.Printf("after 70 s idle: %d of %d held connections still open\n", alive, len(held))
	}
}
