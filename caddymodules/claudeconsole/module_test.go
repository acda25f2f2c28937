package claudeconsole

import "testing"

func TestUnderPrefix(t *testing.T) {
	for _, tc := range []struct {
		path, prefix string
		want         bool
	}{
		{"/admin", "/admin", true},
		{"/admin/", "/admin", true},
		{"/admin/users/1", "/admin", true},
		{"/administrator", "/admin", false},
		{"/adm", "/admin", false},
		{"/", "/admin", false},
		{"/Admin", "/admin", false},
		{"/ops/console/x", "/ops/console", true},
	} {
		if got := underPrefix(tc.path, tc.prefix); got != tc.want {
			t.Errorf("underPrefix(%q, %q) = %v, want %v", tc.path, tc.prefix, got, tc.want)
		}
	}
}
