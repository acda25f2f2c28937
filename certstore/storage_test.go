package certstore_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/claude-gateway/claude-gateway/certstore"
	"github.com/claude-gateway/claude-gateway/internal/testenv"
)

// forEachDB runs f against a fresh, migrated database of every dialect.
func forEachDB(t *testing.T, f func(t *testing.T, s *certstore.Storage)) {
	for dialect, setting := range testenv.Databases(t) {
		t.Run(dialect, func(t *testing.T) {
			s, err := certstore.New(testenv.OpenDB(t, setting), certstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			f(t, s)
		})
	}
}

// pemChain builds a real certificate chain of n certificates, PEM-encoded,
// as certmagic stores it.
func pemChain(t testing.TB, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 1)),
			Subject:      pkix.Name{CommonName: fmt.Sprintf("chain-%d.example.test", i), Organization: []string{strings.Repeat("o", 200)}},
			DNSNames:     []string{fmt.Sprintf("chain-%d.example.test", i), "www.example.test"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	return buf.Bytes()
}

func TestStoreLoad(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *certstore.Storage) {
		ctx := context.Background()
		chain := pemChain(t, 40)
		huge := bytes.Repeat(chain, 1<<20/len(chain)+1) // over 1 MiB
		longKey := "certificates/" + strings.Repeat("k", 5000) + "/x.crt"
		cases := []struct {
			name, key, loadKey string
			value              []byte
		}{
			{"small", "certificates/acme/app.test/app.test.json", "", []byte(`{"sans":["app.test"]}`)},
			{"empty value", "empty/file", "", []byte{}},
			{"nil value is empty", "nil/file", "", nil},
			{"pem chain", "certificates/acme/app.test/app.test.crt", "", chain},
			{"over a mebibyte", "big/blob", "", huge},
			{"binary", "bin/zeros", "", []byte{0, 1, 0xff, 0, '/', 0}},
			{"long key", longKey, "", []byte("long")},
			{"unclean key", "/dirty//key/./x/", "dirty/key/x", []byte("clean")},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if err := s.Store(ctx, c.key, c.value); err != nil {
					t.Fatalf("Store: %v", err)
				}
				loadKey := c.key
				if c.loadKey != "" {
					loadKey = c.loadKey
				}
				got, err := s.Load(ctx, loadKey)
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if got == nil || !bytes.Equal(got, c.value) {
					t.Fatalf("Load returned %d bytes (nil=%v), want %d", len(got), got == nil, len(c.value))
				}
				info, err := s.Stat(ctx, loadKey)
				if err != nil {
					t.Fatalf("Stat: %v", err)
				}
				if !info.IsTerminal || info.Size != int64(len(c.value)) || info.Key != loadKey {
					t.Fatalf("Stat = %+v, want terminal %q of %d bytes", info, loadKey, len(c.value))
				}
				if time.Since(info.Modified) > time.Minute || time.Until(info.Modified) > time.Minute {
					t.Fatalf("Stat.Modified = %v, want about now", info.Modified)
				}
			})
		}

		t.Run("overwrite is read after write", func(t *testing.T) {
			for i := range 20 {
				want := []byte(fmt.Sprintf("version %d", i))
				if err := s.Store(ctx, "rw/key", want); err != nil {
					t.Fatal(err)
				}
				got, err := s.Load(ctx, "rw/key")
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("after storing %q: Load = %q, %v", want, got, err)
				}
			}
		})

		t.Run("empty key is refused", func(t *testing.T) {
			if err := s.Store(ctx, "/", []byte("x")); err == nil {
				t.Fatal("Store of the root succeeded")
			}
			if err := s.Delete(ctx, ""); err == nil {
				t.Fatal("Delete of the root succeeded")
			}
		})
	})
}

func TestNotFound(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *certstore.Storage) {
		ctx := context.Background()
		if err := s.Store(ctx, "a/bc/file", []byte("x")); err != nil {
			t.Fatal(err)
		}
		// "a/b" is not a prefix of "a/bc": prefixes are whole components.
		for _, key := range []string{"missing", "a/b", "a/bc/file/below", "a/bc/fil"} {
			if _, err := s.Load(ctx, key); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Load(%q) error = %v, want fs.ErrNotExist", key, err)
			}
			if _, err := s.Stat(ctx, key); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Stat(%q) error = %v, want fs.ErrNotExist", key, err)
			}
			if _, err := s.List(ctx, key, true); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("List(%q) error = %v, want fs.ErrNotExist", key, err)
			}
			if s.Exists(ctx, key) {
				t.Errorf("Exists(%q) = true", key)
			}
			if err := s.Delete(ctx, key); err != nil {
				t.Errorf("Delete(%q) of a missing key: %v", key, err)
			}
		}
		// A directory is not a file.
		if _, err := s.Load(ctx, "a/bc"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load of a directory: %v, want fs.ErrNotExist", err)
		}
	})
}

// layout is a small certmagic-like tree, including a key that is both a
// file and the prefix of other keys, and siblings that share a name prefix.
var layout = []string{
	"acme/ca/users/a@x/a@x.json",
	"acme/ca/users/a@x/a@x.key",
	"certificates/ca/app.test/app.test.crt",
	"certificates/ca/app.test/app.test.key",
	"certificates/ca/app.test/app.test.json",
	"certificates/ca/app.test2/app.test2.crt",
	"certificates/ca2/x/x.crt",
	"certificatesX/y",
	"locks/thing",
	"ocsp/staple",
	"top",
}

// fileStorage fills certmagic's own FileStorage with layout: the reference
// behaviour the SQL storage must match.
func fileStorage(t *testing.T, keys []string) *certmagic.FileStorage {
	fsys := &certmagic.FileStorage{Path: t.TempDir()}
	for _, k := range keys {
		if err := fsys.Store(context.Background(), k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	return fsys
}

func TestListMatchesFileStorage(t *testing.T) {
	ref := fileStorage(t, layout)
	forEachDB(t, func(t *testing.T, s *certstore.Storage) {
		ctx := context.Background()
		for _, k := range layout {
			if err := s.Store(ctx, k, []byte(k)); err != nil {
				t.Fatal(err)
			}
		}
		prefixes := []string{"", "certificates", "certificates/ca", "certificates/ca/app.test", "acme", "ocsp", "top", "certificates/c"}
		for _, prefix := range prefixes {
			for _, recursive := range []bool{false, true} {
				t.Run(fmt.Sprintf("%q recursive=%v", prefix, recursive), func(t *testing.T) {
					want, wantErr := ref.List(ctx, prefix, recursive)
					got, gotErr := s.List(ctx, prefix, recursive)
					if (wantErr == nil) != (gotErr == nil) {
						t.Fatalf("List error = %v, FileStorage's = %v", gotErr, wantErr)
					}
					slices.Sort(want)
					if !slices.Equal(got, want) {
						t.Fatalf("List =\n%q\nFileStorage lists\n%q", got, want)
					}
				})
			}
		}
		for _, key := range []string{"certificates", "certificates/ca/app.test", "certificates/ca/app.test/app.test.crt", "certificates/ca/app", "top", "nope"} {
			t.Run("stat "+key, func(t *testing.T) {
				want, wantErr := ref.Stat(ctx, key)
				got, gotErr := s.Stat(ctx, key)
				if (wantErr == nil) != (gotErr == nil) {
					t.Fatalf("Stat error = %v, FileStorage's = %v", gotErr, wantErr)
				}
				if got.IsTerminal != want.IsTerminal || (want.IsTerminal && got.Size != want.Size) {
					t.Fatalf("Stat = %+v, FileStorage's = %+v", got, want)
				}
				if s.Exists(ctx, key) != ref.Exists(ctx, key) {
					t.Fatalf("Exists = %v, FileStorage's = %v", s.Exists(ctx, key), ref.Exists(ctx, key))
				}
			})
		}
	})
}

func TestDelete(t *testing.T) {
	cases := []struct {
		name   string
		delete string
	}{
		{"one file", "certificates/ca/app.test/app.test.key"},
		{"a directory", "certificates/ca/app.test"},
		{"a deep directory", "certificates"},
		{"a sibling's name prefix is not a directory", "certificates/ca/app"},
		{"a missing key", "certificates/none"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			forEachDB(t, func(t *testing.T, s *certstore.Storage) {
				ctx := context.Background()
				for _, k := range layout {
					if err := s.Store(ctx, k, []byte(k)); err != nil {
						t.Fatal(err)
					}
				}
				if err := s.Delete(ctx, c.delete); err != nil {
					t.Fatalf("Delete(%q): %v", c.delete, err)
				}
				if s.Exists(ctx, c.delete) {
					t.Fatalf("Exists(%q) after Delete", c.delete)
				}
				for _, k := range layout {
					_, err := s.Load(ctx, k)
					shouldBeGone := k == c.delete || strings.HasPrefix(k, c.delete+"/")
					if shouldBeGone && !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("%q survived Delete(%q): %v", k, c.delete, err)
					}
					if !shouldBeGone && err != nil {
						t.Errorf("%q was lost by Delete(%q): %v", k, c.delete, err)
					}
				}
			})
		})
	}
}

func TestContextCancelled(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *certstore.Storage) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.Store(ctx, "k", []byte("v")); !errors.Is(err, context.Canceled) {
			t.Errorf("Store with a cancelled context: %v", err)
		}
		if _, err := s.Load(ctx, "k"); !errors.Is(err, context.Canceled) {
			t.Errorf("Load with a cancelled context: %v", err)
		}
		if _, err := s.List(ctx, "", true); !errors.Is(err, context.Canceled) {
			t.Errorf("List with a cancelled context: %v", err)
		}
		if err := s.Lock(ctx, "k"); !errors.Is(err, context.Canceled) {
			t.Errorf("Lock with a cancelled context: %v", err)
		}
		if _, err := s.Load(context.Background(), "k"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the cancelled Store wrote anyway: %v", err)
		}
	})
}
