package sessions_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/claude-gateway/claude-gateway/internal/testenv"
	"github.com/claude-gateway/claude-gateway/sessions"
)

// openFiles opens the files/ of session s for its owner; the handle is
// released when the test ends.
func openFiles(t testing.TB, st *sessions.Store, s sessions.Session) *sessions.Files {
	t.Helper()
	f, err := open(t, st, s).Files()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestSymlinksOutAreRefused makes links inside files/ that lead to another
// session and to / and checks that nothing is read or written through them.
func TestSymlinksOutAreRefused(t *testing.T) {
	ctx := context.Background()
	st, _, ws := newStore(t, testenv.SQLiteDatabase(t), sessions.Config{})
	a, _ := st.Create(ctx, "alice")
	b, _ := st.Create(ctx, "bob")
	aFiles := filepath.Join(ws, "sessions", a.ID, "files")
	bFiles := filepath.Join(ws, "sessions", b.ID, "files")
	os.WriteFile(filepath.Join(bFiles, "secret.txt"), []byte("bob's"), 0o644)
	os.Symlink(filepath.Join("..", "..", b.ID, "files"), filepath.Join(aFiles, "other"))
	os.Symlink(bFiles, filepath.Join(aFiles, "other-abs"))
	os.Symlink("/", filepath.Join(aFiles, "root"))
	os.Symlink("/etc/passwd", filepath.Join(aFiles, "passwd"))
	os.Mkdir(filepath.Join(aFiles, "in"), 0o755)
	os.WriteFile(filepath.Join(aFiles, "in", "ok.txt"), []byte("ok"), 0o644)
	os.Symlink("in/ok.txt", filepath.Join(aFiles, "inside-link"))

	f := openFiles(t, st, a)
	for _, rel := range []string{"other/secret.txt", "other-abs/secret.txt", "root/etc/passwd", "passwd"} {
		if file, _, err := f.Open(rel); !errors.Is(err, sessions.ErrInvalidPath) {
			if file != nil {
				file.Close()
			}
			t.Errorf("Open(%q) = %v, want ErrInvalidPath", rel, err)
		}
		if _, _, err := f.Put(rel, strings.NewReader("pwned"), 5); !errors.Is(err, sessions.ErrInvalidPath) {
			t.Errorf("Put(%q) = %v, want ErrInvalidPath", rel, err)
		}
		if err := f.Delete(rel, false); err == nil && rel != "passwd" {
			t.Errorf("Delete(%q) succeeded", rel)
		}
	}
	for _, rel := range []string{"other", "root", "other-abs"} {
		if _, err := f.List(rel); !errors.Is(err, sessions.ErrInvalidPath) {
			t.Errorf("List(%q) = %v, want ErrInvalidPath", rel, err)
		}
	}
	if _, _, err := f.Put("other/new.txt", strings.NewReader("x"), 1); !errors.Is(err, sessions.ErrInvalidPath) {
		t.Errorf("Put through a link to another session = %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(bFiles, "secret.txt")); string(got) != "bob's" {
		t.Errorf("bob's file changed: %q", got)
	}
	if _, err := os.Stat(filepath.Join(bFiles, "new.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file was written into bob's session: %v", err)
	}
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Fatalf("/etc/passwd: %v", err)
	}
	// A link that stays inside is followed.
	file, _, err := f.Open("inside-link")
	if err != nil {
		t.Fatalf("Open(inside-link) = %v", err)
	}
	b2, _ := io.ReadAll(file)
	file.Close()
	if string(b2) != "ok" {
		t.Errorf("inside-link read %q", b2)
	}
}

func TestPutLimitsAndAtomicity(t *testing.T) {
	ctx := context.Background()
	st, _, ws := newStore(t, testenv.SQLiteDatabase(t), sessions.Config{MaxFileSize: 1000})
	s, _ := st.Create(ctx, "alice")
	files := filepath.Join(ws, "sessions", s.ID, "files")
	f := openFiles(t, st, s)

	created, n, err := f.Put("dir/sub/a.txt", strings.NewReader("old"), -1)
	if err != nil || !created || n != 3 {
		t.Fatalf("Put new = %v, %d, %v", created, n, err)
	}
	created, _, err = f.Put("dir/sub/a.txt", strings.NewReader("new!"), 4)
	if err != nil || created {
		t.Fatalf("Put replace = %v, %v", created, err)
	}

	for name, tc := range map[string]struct {
		body io.Reader
		size int64
		want error
	}{
		"announced too large": {strings.NewReader(strings.Repeat("x", 1001)), 1001, sessions.ErrFileTooLarge},
		"streamed too large":  {strings.NewReader(strings.Repeat("x", 5000)), -1, sessions.ErrFileTooLarge},
		"client went away":    {io.MultiReader(strings.NewReader("half"), errReader{}), 900, io.ErrUnexpectedEOF},
	} {
		if _, _, err := f.Put("dir/sub/a.txt", tc.body, tc.size); !errors.Is(err, tc.want) {
			t.Errorf("%s: Put = %v, want %v", name, err, tc.want)
		}
		if got, _ := os.ReadFile(filepath.Join(files, "dir", "sub", "a.txt")); string(got) != "new!" {
			t.Errorf("%s: the old file changed to %q", name, got)
		}
		if _, _, err := f.Put("dir/fresh.txt", tc.body, tc.size); err == nil {
			t.Errorf("%s: a fresh file was written", name)
		}
		if _, err := os.Stat(filepath.Join(files, "dir", "fresh.txt")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: a failed upload left the file: %v", name, err)
		}
		assertNoTemp(t, ws, s.ID)
	}
	if _, _, err := f.Put(".claude-tmp-x", strings.NewReader("x"), 1); !errors.Is(err, sessions.ErrInvalidPath) {
		t.Errorf("Put of a reserved name = %v", err)
	}
	if _, _, err := f.Put("dir", strings.NewReader("x"), 1); !errors.Is(err, sessions.ErrIsDirectory) {
		t.Errorf("Put over a directory = %v", err)
	}
	if err := f.Delete("dir", false); !errors.Is(err, sessions.ErrIsDirectory) {
		t.Errorf("Delete of a directory without dir = %v", err)
	}
	if err := f.Delete("dir", true); err != nil {
		t.Errorf("Delete dir = %v", err)
	}
	if err := f.Delete(".", true); !errors.Is(err, sessions.ErrInvalidPath) {
		t.Errorf("Delete of files/ itself = %v", err)
	}
}

func TestQuota(t *testing.T) {
	ctx := context.Background()
	st, _, ws := newStore(t, testenv.SQLiteDatabase(t), sessions.Config{MaxFileSize: 1000, Quota: 1500})
	s, _ := st.Create(ctx, "alice")
	f := openFiles(t, st, s)
	if _, _, err := f.Put("a", bytes.NewReader(make([]byte, 1000)), 1000); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Put("b", bytes.NewReader(make([]byte, 600)), -1); !errors.Is(err, sessions.ErrQuotaExceeded) {
		t.Errorf("over the quota (streamed) = %v", err)
	}
	if _, _, err := f.Put("b", bytes.NewReader(make([]byte, 600)), 600); !errors.Is(err, sessions.ErrQuotaExceeded) {
		t.Errorf("over the quota (announced) = %v", err)
	}
	if _, _, err := f.Put("b", bytes.NewReader(make([]byte, 500)), 500); err != nil {
		t.Errorf("up to the quota = %v", err)
	}
	// Replacing a file counts only the difference.
	if _, _, err := f.Put("a", bytes.NewReader(make([]byte, 900)), 900); err != nil {
		t.Errorf("replacing within the quota = %v", err)
	}
	if u, _ := f.Usage(); u != 1400 {
		t.Errorf("usage %d, want 1400", u)
	}
	assertNoTemp(t, ws, s.ID)
}

func TestListHidesTemporaryFiles(t *testing.T) {
	ctx := context.Background()
	st, _, ws := newStore(t, testenv.SQLiteDatabase(t), sessions.Config{})
	s, _ := st.Create(ctx, "alice")
	f := openFiles(t, st, s)
	f.Put("b.txt", strings.NewReader("bb"), 2)
	f.Mkdir("a/deep")
	os.WriteFile(filepath.Join(ws, "sessions", s.ID, "files", ".claude-tmp-1"), nil, 0o644)
	es, err := f.List(".")
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%d %s %s %s %s %d", len(es), es[0].Name, es[0].Type, es[1].Name, es[1].Type, es[1].Size)
	if got != "2 a dir b.txt file 2" {
		t.Errorf("listing = %s (%+v)", got, es)
	}
	if _, err := f.List("b.txt"); !errors.Is(err, sessions.ErrNotDirectory) {
		t.Errorf("List of a file = %v", err)
	}
	if _, err := f.List("missing"); !errors.Is(err, sessions.ErrFileNotFound) {
		t.Errorf("List of nothing = %v", err)
	}
}

func TestHistoryAppendsAreAtomic(t *testing.T) {
	forEachDB(t, func(t *testing.T, setting string) {
		ctx := context.Background()
		st, _, _ := newStore(t, setting, sessions.Config{})
		s, _ := st.Create(ctx, "alice")
		var wg sync.WaitGroup
		for i := 0; i < 40; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				if _, err := open(t, st, s).AppendHistory([]byte(fmt.Sprintf(`{"n": %d}`, i))); err != nil {
					t.Error(err)
				}
			}(i)
		}
		wg.Wait()
		raw, err := open(t, st, s).ReadHistory()
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 40; i++ {
			if !bytes.Contains(raw, []byte(fmt.Sprintf(`{"n":%d}`, i))) {
				t.Errorf("entry %d lost: %s", i, raw)
			}
		}
		if _, err := open(t, st, s).AppendHistory([]byte(`{"n":`)); !errors.Is(err, sessions.ErrInvalidHistory) {
			t.Errorf("invalid entry = %v", err)
		}
	})
}

func assertNoTemp(t *testing.T, ws, id string) {
	t.Helper()
	filepath.Walk(filepath.Join(ws, "sessions", id, "files"), func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.HasPrefix(info.Name(), ".claude-tmp-") {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
	if es, _ := os.ReadDir(filepath.Join(ws, "sessions", id, ".uploads")); len(es) != 0 {
		t.Errorf("upload journal not empty: %d markers", len(es))
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }
