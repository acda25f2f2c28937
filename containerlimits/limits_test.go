package containerlimits

import (
	"encoding/json"
	"strings"
	"testing"
)

var (
	def   = Limits{Memory: 256 << 20, CPUs: 1, Pids: 128, TmpSize: 64 << 20}
	floor = Limits{Memory: 8 << 20, CPUs: 0.01, Pids: 4, TmpSize: 1 << 20}
)

// TestWithDefaults fills in the zero fields only.
func TestWithDefaults(t *testing.T) {
	if got := (Limits{}).WithDefaults(def); got != def {
		t.Errorf("zero limits: %+v, want the defaults %+v", got, def)
	}
	set := Limits{Memory: 1 << 30, Pids: 7}
	want := Limits{Memory: 1 << 30, CPUs: 1, Pids: 7, TmpSize: 64 << 20}
	if got := set.WithDefaults(def); got != want {
		t.Errorf("partly set: %+v, want %+v", got, want)
	}
}

// TestValidate names the first limit below its floor, and the floor.
func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		l    Limits
		want string
	}{
		{def, ""},
		{floor, ""},
		{Limits{Memory: 4 << 20, CPUs: 1, Pids: 128, TmpSize: 64 << 20}, "memory 4194304 is below 8 MiB"},
		{Limits{Memory: 8 << 20, CPUs: 0.001, Pids: 128, TmpSize: 64 << 20}, "cpus 0.001 is below 0.01"},
		{Limits{Memory: 8 << 20, CPUs: 1, Pids: 3, TmpSize: 64 << 20}, "pids 3 is below 4"},
		{Limits{Memory: 8 << 20, CPUs: 1, Pids: 4, TmpSize: 512 << 10}, "tmp_size 524288 is below 1 MiB"},
		{Limits{Memory: 8 << 20, CPUs: 1, Pids: 4, TmpSize: -1}, "tmp_size -1 is below 1 MiB"},
	} {
		err := tc.l.Validate(floor)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != tc.want) {
			t.Errorf("%+v: %v, want %q", tc.l, err, tc.want)
		}
	}
	if err := (Limits{Memory: 100, CPUs: 1, Pids: 4, TmpSize: 1 << 20}).Validate(Limits{Memory: 1000}); err == nil || !strings.HasSuffix(err.Error(), "below 1000 bytes") {
		t.Errorf("a floor that is no whole MiB: %v", err)
	}
}

// TestEngineSettings maps the limits onto the engine's: swap equals memory,
// CPUs in billionths, the process limit, a bounded /tmp without setuid or
// devices.
func TestEngineSettings(t *testing.T) {
	l := Limits{Memory: 96 << 20, CPUs: 0.5, Pids: 50, TmpSize: 16 << 20}
	r := l.Resources()
	if r.Memory != 96<<20 || r.MemorySwap != 96<<20 || r.NanoCPUs != 5e8 || r.PidsLimit == nil || *r.PidsLimit != 50 {
		t.Errorf("resources %+v", r)
	}
	if got := l.Tmpfs()["/tmp"]; got != "rw,nosuid,nodev,size=16777216" {
		t.Errorf("tmpfs options %q", got)
	}
}

// TestJSONIsFlat: embedded in a configuration, the limits' fields sit at
// its own level.
func TestJSONIsFlat(t *testing.T) {
	cfg := struct {
		Image string `json:"image"`
		Limits
		Other int `json:"other"`
	}{Image: "x", Limits: Limits{Memory: 1, CPUs: 2, Pids: 3, TmpSize: 4}, Other: 5}
	out, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"image":"x","memory":1,"cpus":2,"pids":3,"tmp_size":4,"other":5}`; string(out) != want {
		t.Errorf("%s, want %s", out, want)
	}
}
