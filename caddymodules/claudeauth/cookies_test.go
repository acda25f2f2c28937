package claudeauth

import (
	"net/http/httptest"
	"testing"
)

func TestStripCookies(t *testing.T) {
	names := []string{"__Host-claude_access", "__Host-claude_refresh"}
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"__Host-claude_access=t"}, ""},
		{[]string{"a=1; __Host-claude_access=t; b=\"q v\""}, "a=1; b=\"q v\""},
		{[]string{"__Host-claude_refresh=r;vscode-tkn=k", "__Host-claude_access=t"}, "vscode-tkn=k"},
		{[]string{"x__Host-claude_access=keep; __Host-claude_access =t"}, "x__Host-claude_access=keep"},
		{[]string{"flag; a=1"}, "flag; a=1"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		for _, h := range tc.in {
			r.Header.Add("Cookie", h)
		}
		StripCookies(r, names)
		if got := r.Header.Get("Cookie"); got != tc.want || len(r.Header.Values("Cookie")) > 1 {
			t.Errorf("StripCookies(%q) = %q, want %q", tc.in, r.Header.Values("Cookie"), tc.want)
		}
	}
}
