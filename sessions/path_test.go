package sessions_test

import (
	"errors"
	"testing"

	"github.com/claude-gateway/claude-gateway/sessions"
)

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		escaped string
		rel     string
		dir     bool
		bad     bool
	}{
		{escaped: "", rel: ".", dir: true},
		{escaped: "a.txt", rel: "a.txt"},
		{escaped: "src/main.py", rel: "src/main.py"},
		{escaped: "src/", rel: "src", dir: true},
		{escaped: "with%20space.txt", rel: "with space.txt"},
		{escaped: "caf%C3%A9/", rel: "café", dir: true},
		{escaped: "..a/b..", rel: "..a/b.."},
		{escaped: "../x", bad: true},
		{escaped: "%2e%2e/x", bad: true},
		{escaped: "%2E%2E/x", bad: true},
		{escaped: ".%2e/x", bad: true},
		{escaped: "..%2fx", bad: true},
		{escaped: "..%2Fx", bad: true},
		{escaped: "a%5c..%5cx", bad: true},
		{escaped: `a\..\x`, bad: true},
		{escaped: "/etc/passwd", bad: true},
		{escaped: "%2fetc/passwd", bad: true},
		{escaped: "a/../../x", bad: true},
		{escaped: "a/./b", bad: true},
		{escaped: "a//b", bad: true},
		{escaped: "/", bad: true},
		{escaped: "x%00.txt", bad: true},
		{escaped: "x\x00.txt", bad: true},
		{escaped: "x%0a.txt", bad: true},
		{escaped: "bad%zzescape", bad: true},
		{escaped: "..", bad: true},
		{escaped: "../", bad: true},
	} {
		rel, dir, err := sessions.ParsePath(tc.escaped)
		if tc.bad {
			if !errors.Is(err, sessions.ErrInvalidPath) {
				t.Errorf("ParsePath(%q) = %q, %v, %v; want ErrInvalidPath", tc.escaped, rel, dir, err)
			}
			continue
		}
		if err != nil || rel != tc.rel || dir != tc.dir {
			t.Errorf("ParsePath(%q) = %q, %v, %v; want %q, %v", tc.escaped, rel, dir, err, tc.rel, tc.dir)
		}
	}
}
