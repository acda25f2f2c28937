package certstore_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/claude-gateway/claude-gateway/certstore"
	"github.com/claude-gateway/claude-gateway/database"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// The test binary doubles as the other replica: with CERTSTORE_CHILD set it
// runs one child role instead of the tests, against CERTSTORE_DB.
func TestMain(m *testing.M) {
	if role := os.Getenv("CERTSTORE_CHILD"); role != "" {
		if err := runChild(role); err != nil {
			fmt.Println("CHILD ERROR:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runChild(role string) error {
	ctx := context.Background()
	db, err := database.Open(ctx, os.Getenv("CERTSTORE_DB"))
	if err != nil {
		return err
	}
	defer db.Close()
	lease, _ := time.ParseDuration(os.Getenv("CERTSTORE_LEASE"))
	s, err := certstore.New(db, certstore.Options{Owner: "child-" + strconv.Itoa(os.Getpid()), Lease: lease, PollInterval: 100 * time.Millisecond})
	if err != nil {
		return err
	}
	switch role {
	case "contend":
		rounds, _ := strconv.Atoi(os.Getenv("CERTSTORE_ROUNDS"))
		return contend(ctx, s, "child-"+strconv.Itoa(os.Getpid()), rounds)
	case "hold":
		if err := s.Lock(ctx, "held"); err != nil {
			return err
		}
		fence, _ := s.Fence("held")
		fmt.Printf("LOCKED %d\n", fence)
		select {} // until killed
	}
	return fmt.Errorf("unknown role %q", role)
}

// contend takes the lock rounds times; in each critical section it marks
// itself the holder, increments the shared counter with a racy
// read-sleep-write, and checks that nobody else marked themselves meanwhile.
func contend(ctx context.Context, s *certstore.Storage, me string, rounds int) error {
	for i := range rounds {
		if err := s.Lock(ctx, "counter"); err != nil {
			return err
		}
		if err := s.Store(ctx, "holder", []byte(me)); err != nil {
			return err
		}
		if err := incrementSlowly(ctx, s, "counter-value"); err != nil {
			return err
		}
		got, err := s.Load(ctx, "holder")
		if err != nil {
			return err
		}
		if string(got) != me {
			return fmt.Errorf("round %d: %s held the lock while %s did", i, got, me)
		}
		if err := s.Unlock(ctx, "counter"); err != nil {
			return err
		}
	}
	return nil
}

func child(t *testing.T, setting, role string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "CERTSTORE_CHILD="+role, "CERTSTORE_DB="+setting)
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// TestTwoProcesses: two child processes and goroutines of this process
// contend for one lock over MariaDB; every critical section must be alone.
func TestTwoProcesses(t *testing.T) {
	setting := testenv.MySQLDatabase(t)
	const rounds, local = 15, 2
	var wg sync.WaitGroup
	errs := make(chan error, 2+local)
	for range 2 {
		cmd := child(t, setting, "contend", "CERTSTORE_LEASE=3s", "CERTSTORE_ROUNDS="+strconv.Itoa(rounds))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("child: %v: %s", err, out)
			}
		}()
	}
	r := replicas(t, setting, local, 3*time.Second)
	for i := range local {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := contend(context.Background(), r[i], fmt.Sprintf("parent-%d", i), rounds); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got, want := readCounter(t, r[0], "counter-value"), (2+local)*rounds; got != want {
		t.Fatalf("counter = %d after %d locked increments by 2 processes and %d goroutines", got, want, local)
	}
}

// TestKilledHolder: a holder killed with -9 keeps the lock until its lease
// runs out — its renewals keep it before that — and then loses it to the next
// contender, never earlier.
func TestKilledHolder(t *testing.T) {
	setting := testenv.MySQLDatabase(t)
	const lease = 2 * time.Second
	ctx := context.Background()
	cmd := child(t, setting, "hold", "CERTSTORE_LEASE="+lease.String())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(out)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "LOCKED ") {
		t.Fatalf("child did not report its lock: %q", lines.Text())
	}
	childFence, _ := strconv.ParseInt(strings.TrimPrefix(lines.Text(), "LOCKED "), 10, 64)

	s := replicas(t, setting, 1, lease)[0]
	// Alive, the child renews: its lock survives three leases.
	for end := time.Now().Add(3 * lease); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if ok, err := s.TryLock(ctx, "held"); err != nil || ok {
			t.Fatalf("TryLock while the holder lives = %v, %v", ok, err)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	db := testenv.OpenDB(t, setting)
	var expires, dbNow int64
	if err := db.QueryRowContext(ctx, "SELECT expires_at, UNIX_TIMESTAMP() * 1000 + MICROSECOND(NOW(6)) DIV 1000 FROM cert_locks").Scan(&expires, &dbNow); err != nil {
		t.Fatal(err)
	}
	if dbNow < expires {
		if ok, err := s.TryLock(ctx, "held"); err != nil || ok {
			t.Fatalf("TryLock %d ms before the dead holder's lease ends = %v, %v", expires-dbNow, ok, err)
		}
	}
	wait, cancel := context.WithTimeout(ctx, 5*lease)
	defer cancel()
	if err := s.Lock(wait, "held"); err != nil {
		t.Fatalf("the dead holder's lock was not taken over: %v", err)
	}
	defer s.Unlock(ctx, "held")
	var acquired, fence int64
	if err := db.QueryRowContext(ctx, "SELECT acquired_at, fence FROM cert_locks").Scan(&acquired, &fence); err != nil {
		t.Fatal(err)
	}
	if acquired < expires {
		t.Fatalf("taken over at %d, %d ms before the dead holder's lease ended at %d", acquired, expires-acquired, expires)
	}
	if fence != childFence+1 {
		t.Fatalf("fence after takeover = %d, want %d", fence, childFence+1)
	}
	t.Logf("dead holder's lease ended at %d; taken over %d ms later", expires, acquired-expires)
}
