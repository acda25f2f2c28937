package executor

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestRunsLoadAndObserver: while runs hold slots and wait, Runs and Load
// show them per user; the observer hears of each finished run with its
// outcome, and nothing of the code.
func TestRunsLoadAndObserver(t *testing.T) {
	t.Parallel()
	e := newTestExecutor(t, Config{Concurrency: 1, PerUser: 1, Queue: 2})
	var mu sync.Mutex
	var heard []RunInfo
	var results []Result
	e.SetObserver(func(info RunInfo, res Result, err error) {
		mu.Lock()
		heard, results = append(heard, info), append(results, res)
		mu.Unlock()
	})
	var wg sync.WaitGroup
	wg.Go(func() {
		e.RunBash(context.Background(), "sleep 2; exit 3", Spec{UserID: "alice", SessionID: "session-a"})
	})
	deadline := time.Now().Add(30 * time.Second)
	for len(e.Runs()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first run never took its slot")
		}
		time.Sleep(5 * time.Millisecond)
	}
	wg.Go(func() { e.RunBash(context.Background(), "true", Spec{UserID: "bob", SessionID: "session-b"}) })
	for e.Stats().Queued == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the second run never queued")
		}
		time.Sleep(5 * time.Millisecond)
	}
	runs, load := e.Runs(), e.Load()
	if len(runs) != 1 || runs[0].UserID != "alice" || runs[0].SessionID != "session-a" || runs[0].Language != Bash {
		t.Fatalf("runs %+v", runs)
	}
	if len(load) != 2 || load[0] != (UserLoad{UserID: "alice", Running: 1}) || load[1] != (UserLoad{UserID: "bob", Queued: 1}) {
		t.Fatalf("load %+v", load)
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(heard) != 2 || heard[0].UserID != "alice" || results[0].ExitCode != 3 || heard[1].UserID != "bob" || results[1].ExitCode != 0 {
		t.Fatalf("observer heard %+v %+v", heard, results)
	}
	if len(e.Runs()) != 0 || len(e.Load()) != 0 {
		t.Fatalf("after the runs: %+v %+v", e.Runs(), e.Load())
	}
}
