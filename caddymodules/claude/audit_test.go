package claude

import (
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func TestAuditOption(t *testing.T) {
	for _, tc := range []struct {
		block, wantErr string
		want           AuditConfig
	}{
		{block: "audit {\nretention 720h\nbuffer 100\n}", want: AuditConfig{Retention: caddy.Duration(720 * time.Hour), Buffer: 100}},
		{block: "audit {\nretention forever\n}", want: AuditConfig{Retention: -1}},
		{block: "audit {\n}", want: AuditConfig{}},
		{block: "audit {\nretention 0s\n}", wantErr: "positive duration"},
		{block: "audit {\nbuffer -3\n}", wantErr: `"-3" is not a non-negative integer`},
		{block: "audit {\nbuffer 0\n}", wantErr: "positive number"},
		{block: "audit {\nsecret x\n}", wantErr: "unknown audit option"},
		{block: "audit x", wantErr: "wrong argument count"},
	} {
		app, ok := parseBlock(t, tc.block, tc.wantErr)
		if !ok {
			continue
		}
		if app.AuditConfig == nil || *app.AuditConfig != tc.want {
			t.Errorf("%q: got %+v, want %+v", tc.block, app.AuditConfig, tc.want)
		}
	}
}
