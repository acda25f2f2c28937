// Command claude-run is the helper that runs a program inside a session's
// workspace container for the gateway's executor (through `docker exec`), so
// that a run ends with nothing of it left behind:
//
//	claude-run exec --id RUN [--timeout-ms N] [--output-limit BYTES] -- PROGRAM [ARG…]
//	claude-run kill RUN
//	claude-run serve --socket PATH
//
// `exec` becomes a child subreaper, starts PROGRAM with the highest OOM
// score, writes its output and then its result as frames on stdout (see
// package executor/runner), and kills every process PROGRAM left when it ends,
// times out, passes the output cap, or gets SIGTERM. `kill` ends a run from a
// second `docker exec`. `serve` is the run server the workspace manager
// starts once per workspace start: it listens on a unix socket the gateway
// reaches through the session's directory and runs each request as `exec`,
// so a run on a warm workspace costs no `docker exec` (runner.Serve). The
// workspace image installs it at
// /usr/local/bin/claude-run; it is static and needs nothing else.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/claude-gateway/claude-gateway/executor/runner"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "exec":
		fs := flag.NewFlagSet("exec", flag.ExitOnError)
		id := fs.String("id", "", "the run's id")
		timeout := fs.Int64("timeout-ms", 0, "wall-clock limit in milliseconds (0: none)")
		limit := fs.Int64("output-limit", 0, "cap of each output stream in bytes (0: none)")
		fs.Parse(os.Args[2:])
		res, err := runner.Run(runner.Options{
			RunID: *id, Argv: fs.Args(), Timeout: time.Duration(*timeout) * time.Millisecond,
			OutputLimit: *limit, Stdin: os.Stdin, Out: os.Stdout,
		})
		if err != nil {
			fmt.Fprintf(os.Stderr, "claude-run: %v\n", err)
			os.Exit(125)
		}
		os.Exit(res.ExitCode)
	case "kill":
		if len(os.Args) != 3 {
			usage()
		}
		found, err := runner.Kill(os.Args[2], 10*time.Second)
		if err != nil {
			fmt.Fprintf(os.Stderr, "claude-run: %v\n", err)
			os.Exit(125)
		}
		if !found {
			fmt.Fprintf(os.Stderr, "claude-run: run %s is not running here\n", os.Args[2])
		}
	case "serve":
		fs := flag.NewFlagSet("serve", flag.ExitOnError)
		socket := fs.String("socket", "", "the unix socket to listen on")
		fs.Parse(os.Args[2:])
		if *socket == "" || fs.NArg() != 0 {
			usage()
		}
		err := runner.Serve(runner.ServeOptions{Socket: *socket, Log: os.Stderr})
		fmt.Fprintf(os.Stderr, "claude-run: %v\n", err)
		os.Exit(125)
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: claude-run exec --id RUN [--timeout-ms N] [--output-limit BYTES] -- PROGRAM [ARG...]")
	fmt.Fprintln(os.Stderr, "       claude-run kill RUN")
	fmt.Fprintln(os.Stderr, "       claude-run serve --socket PATH")
	os.Exit(2)
}
