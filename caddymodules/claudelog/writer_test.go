package claudelog

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/logging"
)

func TestBufferedWriterCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		in       string
		size     int64
		interval time.Duration
		output   string // the wrapped output's JSON, "" for none
	}{
		{in: `claude_buffered`},
		{in: `claude_buffered {
			size 8KiB
			flush_interval 1s
			output stdout
		}`, size: 8 << 10, interval: time.Second, output: `{"output":"stdout"}`},
		{in: `claude_buffered {
			flush_interval 250ms
			output file /var/log/access.log {
				roll_keep 3
			}
		}`, interval: 250 * time.Millisecond, output: `{"filename":"/var/log/access.log","output":"file","roll_keep":3}`},
	} {
		var bw BufferedWriter
		if err := bw.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.in)); err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if bw.Size != tc.size || time.Duration(bw.FlushInterval) != tc.interval {
			t.Errorf("%s: size %d, interval %s; want %d, %s", tc.in, bw.Size, time.Duration(bw.FlushInterval), tc.size, tc.interval)
		}
		var got map[string]any
		if tc.output != "" {
			if err := json.Unmarshal(bw.WriterRaw, &got); err != nil {
				t.Fatalf("%s: output %s: %v", tc.in, bw.WriterRaw, err)
			}
			var want map[string]any
			json.Unmarshal([]byte(tc.output), &want)
			if g, _ := json.Marshal(got); string(g) != string(mustJSON(want)) {
				t.Errorf("%s: output %s, want %s", tc.in, g, tc.output)
			}
		} else if bw.WriterRaw != nil {
			t.Errorf("%s: output %s, want none (stderr)", tc.in, bw.WriterRaw)
		}
	}
	for _, bad := range []string{
		`claude_buffered stderr`,
		`claude_buffered {
			size
		}`,
		`claude_buffered {
			flush_interval 0
		}`,
		`claude_buffered {
			output
		}`,
		`claude_buffered {
			output nosuchwriter
		}`,
		`claude_buffered {
			colour blue
		}`,
	} {
		var bw BufferedWriter
		if err := bw.UnmarshalCaddyfile(caddyfile.NewTestDispenser(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// The writer opened writes through to the wrapped output once closed, and
// its key names the wrapped output and the settings.
func TestBufferedWriterProvisionDefaults(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
	defer cancel()
	bw := &BufferedWriter{}
	if err := bw.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if bw.Size != defaultBufferSize || time.Duration(bw.FlushInterval) != defaultFlushInterval {
		t.Fatalf("defaults: size %d, interval %s", bw.Size, time.Duration(bw.FlushInterval))
	}
	if key := bw.WriterKey(); !strings.Contains(key, "std:err") && !strings.Contains(key, "stderr") {
		t.Fatalf("key %q does not name stderr", key)
	}
	if s := bw.String(); !strings.Contains(s, "stderr") {
		t.Fatalf("String %q does not name stderr", s)
	}
}
