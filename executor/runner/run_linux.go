package runner

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// prSetChildSubreaper is prctl's PR_SET_CHILD_SUBREAPER.
const prSetChildSubreaper = 36

// oomScoreFile is this process's OOM score adjustment.
const oomScoreFile = "/proc/self/oom_score_adj"

// Options describe one run.
type Options struct {
	// RunID names the run; kill requests use it.
	RunID string
	// Argv is the program and its arguments, looked up in PATH.
	Argv []string
	// Timeout is the wall-clock limit; 0 is none.
	Timeout time.Duration
	// OutputLimit caps each of stdout and stderr in bytes; 0 is none.
	OutputLimit int64
	// Stdin is the program's standard input.
	Stdin *os.File
	// Out receives the frames.
	Out io.Writer
}

// tombstoneDir holds the marks of runs killed before their helper started.
var tombstoneDir = filepath.Join(os.TempDir(), "claude-run")

func tombstone(runID string) string { return filepath.Join(tombstoneDir, runID+".killed") }

// Run runs the program as a child of this process, which becomes a child
// subreaper: whatever the program starts, daemons that double-fork or call
// setsid included, stays a descendant of this process. When the program
// ends, is killed by the limit, the cap, a signal to this process (a kill
// request) or a lost reader, Run kills every descendant until none is left,
// then writes the result frame. It returns the result it wrote.
func Run(o Options) (Result, error) {
	if !ValidRunID(o.RunID) {
		return Result{}, fmt.Errorf("invalid run id %q", o.RunID)
	}
	if len(o.Argv) == 0 {
		return Result{}, errors.New("no program to run")
	}
	out := NewFrameWriter(o.Out)
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return Result{}, fmt.Errorf("becoming a child subreaper: %w", errno)
	}
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	signal.Ignore(syscall.SIGPIPE)
	defer os.Remove(tombstone(o.RunID))
	// A kill request that came before this process could be found leaves a
	// mark; it is looked for only now that a later one would be caught.
	if _, err := os.Stat(tombstone(o.RunID)); err == nil {
		res := Result{ExitCode: 128 + int(syscall.SIGKILL), Killed: true}
		return res, out.WriteResult(res)
	}
	oomBefore, oomKnown := OOMKills()

	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		return Result{}, err
	}
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		return Result{}, err
	}
	path, err := exec.LookPath(o.Argv[0])
	if err != nil {
		// The program's own error, as a shell reports it.
		fmt.Fprintf(stderrW, "claude-run: %s: %v\n", o.Argv[0], err)
		stdoutW.Close()
		stderrW.Close()
		res := Result{ExitCode: 127}
		drain(out, stdoutR, stderrR)
		return res, out.WriteResult(res)
	}
	cmd := exec.Command(path, o.Argv[1:]...)
	cmd.Args[0] = o.Argv[0]
	cmd.Env = append(os.Environ(), EnvRunID+"="+o.RunID)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Stdin, stdoutW, stderrW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// The program starts with the highest OOM score, so the kernel kills
	// it, not the IDE, when the workspace runs out of memory. The score is
	// raised on this process, inherited at the fork, and lowered back here
	// (down to the floor it started from, which needs no privilege).
	ownScore, _ := os.ReadFile(oomScoreFile)
	if err := os.WriteFile(oomScoreFile, []byte("1000"), 0); err != nil {
		fmt.Fprintf(os.Stderr, "claude-run: raising the OOM score: %v\n", err)
	}
	err = cmd.Start()
	if len(ownScore) > 0 {
		os.WriteFile(oomScoreFile, ownScore, 0)
	}
	if err != nil {
		return Result{}, fmt.Errorf("starting the program: %w", err)
	}
	stdoutW.Close()
	stderrW.Close()
	main := cmd.Process.Pid

	overflow := make(chan struct{}, 2)
	lost := make(chan struct{}, 2)
	var pumps sync.WaitGroup
	pump := func(kind byte, r *os.File) {
		defer pumps.Done()
		buf := make([]byte, 32<<10)
		var sent int64
		stopped := false // past the cap or the reader is gone: drain only
		for {
			n, err := r.Read(buf)
			if n > 0 && !stopped {
				p := buf[:n]
				over := o.OutputLimit > 0 && sent+int64(n) > o.OutputLimit
				if over {
					p = p[:o.OutputLimit-sent]
				}
				sent += int64(len(p))
				if len(p) > 0 {
					if werr := out.Write(kind, p); werr != nil {
						stopped = true
						lost <- struct{}{}
					}
				}
				if over && !stopped {
					stopped = true
					overflow <- struct{}{}
				}
			}
			if err != nil {
				return
			}
		}
	}
	pumps.Add(2)
	go pump(FrameStdout, stdoutR)
	go pump(FrameStderr, stderrR)

	exited := make(chan syscall.WaitStatus, 1)
	go func() {
		var ws syscall.WaitStatus
		for {
			_, err := syscall.Wait4(main, &ws, 0, nil)
			if err == syscall.EINTR {
				continue
			}
			exited <- ws
			return
		}
	}()
	var deadline <-chan time.Time
	if o.Timeout > 0 {
		t := time.NewTimer(o.Timeout)
		defer t.Stop()
		deadline = t.C
	}

	var res Result
	var status syscall.WaitStatus
	select {
	case status = <-exited:
	case <-deadline:
		res.TimedOut = true
	case <-overflow:
		res.Truncated = true
	case <-signals:
		res.Killed = true
	case <-lost:
		res.Killed = true
	}
	if res.TimedOut || res.Truncated || res.Killed {
		killDescendants()
		status = <-exited
	}
	res.Leftovers = reapAll()
	res.ExitCode = exitCode(status)

	// Every writer of the pipes is dead now; what they wrote is still read.
	drained := make(chan struct{})
	go func() { pumps.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(2 * time.Second):
		// A descendant handed a pipe end to a process outside the run.
		stdoutR.Close()
		stderrR.Close()
		<-drained
	}
	select {
	case <-overflow:
		res.Truncated = true
	default:
	}
	if oomAfter, ok := OOMKills(); ok && oomKnown {
		res.OOMKilled = oomAfter > oomBefore
	} else {
		// No counter: a SIGKILL nobody here sent is the OOM killer's.
		res.OOMKilled = status.Signaled() && status.Signal() == syscall.SIGKILL && !res.TimedOut && !res.Truncated && !res.Killed
	}
	return res, out.WriteResult(res)
}

// exitCode is a shell's view of a wait status: the exit status, or 128+n
// for a process ended by signal n.
func exitCode(ws syscall.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return 128 + int(syscall.SIGKILL)
}

// killDescendants sends SIGKILL to every process below this one.
func killDescendants() int {
	pids := Descendants(os.Getpid())
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	return len(pids)
}

// reapAll kills and reaps descendants until this process has no child
// left. As a child subreaper it inherits every orphan below it, so no child
// means no descendant. It returns how many processes it killed.
func reapAll() int {
	killed := 0
	for range 5000 { // ~10 s at worst: a fork bomb is bounded by the pids limit
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if err == syscall.EINTR {
				continue
			}
			if err == syscall.ECHILD {
				return killed
			}
			if err != nil || pid == 0 {
				break
			}
		}
		killed += killDescendants()
		time.Sleep(2 * time.Millisecond)
	}
	return killed
}

// drain sends what is in the pipes (their writers closed) as frames.
func drain(out *FrameWriter, stdout, stderr *os.File) {
	for kind, r := range map[byte]*os.File{FrameStdout: stdout, FrameStderr: stderr} {
		if b, err := io.ReadAll(r); err == nil && len(b) > 0 {
			out.Write(kind, b)
		}
		r.Close()
	}
}

// Kill ends the run runID in this container: it marks the run as killed
// (for a helper not started yet), sends SIGTERM to its helper, which kills
// the run's processes and reports, waits up to wait for the helper to go,
// and then kills whatever still carries the run's id. It reports whether a
// helper was found.
func Kill(runID string, wait time.Duration) (bool, error) {
	if !ValidRunID(runID) {
		return false, fmt.Errorf("invalid run id %q", runID)
	}
	if err := os.MkdirAll(tombstoneDir, 0o700); err == nil {
		os.WriteFile(tombstone(runID), nil, 0o600)
	}
	helpers := Helpers(runID)
	for _, pid := range helpers {
		syscall.Kill(pid, syscall.SIGTERM)
	}
	until := time.Now().Add(wait)
	found := len(helpers) > 0
	for len(helpers) > 0 && time.Now().Before(until) {
		time.Sleep(5 * time.Millisecond)
		helpers = Helpers(runID)
	}
	for _, pid := range helpers {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	// Whatever outlived its helper (killed above, or by the OOM killer).
	KillTagged(runID)
	return found, nil
}

// KillTagged kills every process that carries run runID's id until none is
// left (or ~5 s passed): what a helper that died left behind.
func KillTagged(runID string) {
	for range 500 {
		tagged := Tagged(runID)
		if len(tagged) == 0 {
			return
		}
		for _, pid := range tagged {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
