package requestpath

import (
	"net/url"
	"testing"
)

// benchPaths are typical request paths: a page, an API call, a file with
// escapes.
var benchPaths = []string{
	"/",
	"/api/sessions/session-0123456789abcdef0123456789abcdef/files/src/main.py",
	"/projects/42/%C3%A9t%C3%A9%20report.txt",
}

// BenchmarkCanonical compares Canonical with the decoding net/url does for
// every request anyway (url.PathUnescape), the baseline of the ratio.
func BenchmarkCanonical(b *testing.B) {
	b.Run("baseline=PathUnescape", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := url.PathUnescape(benchPaths[i%len(benchPaths)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Canonical", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := Canonical(benchPaths[i%len(benchPaths)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
