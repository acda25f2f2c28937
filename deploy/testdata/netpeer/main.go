// Command netpeer is the image test's other container, a static binary on an
// empty image:
//
//	netpeer serve ADDR NAME      HTTP server answering {"served_by": NAME, "path": …}
//	netpeer probe TARGET…        TCP connects; TARGET is host:port or host:lo-hi;
//	                             prints {"open": [...], "unresolved": [...], "closed": N}
//	netpeer stat PATH            prints {"uid", "gid", "mode"} of PATH
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fail(fmt.Errorf("usage: netpeer serve ADDR NAME | probe TARGET... | stat PATH"))
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2], os.Args[3])
	case "probe":
		err = probe(os.Args[2:])
	case "stat":
		err = stat(os.Args[2])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "netpeer:", err)
	os.Exit(1)
}

func serve(addr, name string) error {
	return http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"served_by": name, "path": r.URL.Path, "host": r.Host})
	}))
}

type result struct {
	Open       []string `json:"open"`
	Unresolved []string `json:"unresolved"`
	Closed     int      `json:"closed"`
}

func probe(targets []string) error {
	var addrs []string
	res := result{Open: []string{}, Unresolved: []string{}}
	for _, t := range targets {
		host, ports, ok := strings.Cut(t, ":")
		if !ok {
			return fmt.Errorf("target %q: want host:port or host:lo-hi", t)
		}
		lo, hi, isRange := strings.Cut(ports, "-")
		if !isRange {
			hi = lo
		}
		from, err1 := strconv.Atoi(lo)
		to, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || from < 1 || to > 65535 || from > to {
			return fmt.Errorf("target %q: bad ports", t)
		}
		if net.ParseIP(host) == nil {
			if ips, err := net.LookupHost(host); err != nil || len(ips) == 0 {
				res.Unresolved = append(res.Unresolved, t)
				continue
			}
		}
		for p := from; p <= to; p++ {
			addrs = append(addrs, net.JoinHostPort(host, strconv.Itoa(p)))
		}
	}
	var mu sync.Mutex
	work := make(chan string)
	var wg sync.WaitGroup
	for i := 0; i < 256; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range work {
				c, err := net.DialTimeout("tcp", a, time.Second)
				mu.Lock()
				if err == nil {
					c.Close()
					res.Open = append(res.Open, a)
				} else {
					res.Closed++
				}
				mu.Unlock()
			}
		}()
	}
	for _, a := range addrs {
		work <- a
	}
	close(work)
	wg.Wait()
	sort.Strings(res.Open)
	return json.NewEncoder(os.Stdout).Encode(res)
}

func stat(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	st := fi.Sys().(*syscall.Stat_t)
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"uid": st.Uid, "gid": st.Gid, "mode": fmt.Sprintf("%o", fi.Mode().Perm()),
	})
}
