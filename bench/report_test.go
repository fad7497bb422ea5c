package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sweepReport(t *testing.T) *Report {
	t.Helper()
	f := newFake(3)
	f.staleP = 0.2
	cfg := testConfig()
	cfg.Workload = WorkloadF
	cfg.Faults = &recordingFaults{}
	cfg.Schedule = Schedule{{At: 0, Action: FaultPause, Node: 1}}
	qs, err := ParseQuorums("3/1/1,3/2/2")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Sweep(t.Context(), f, cfg, qs)
	if err != nil {
		t.Fatal(err)
	}
	rep.Title = `sweep <test> & "quotes"`
	return rep
}

func TestSweepSeparatesSettings(t *testing.T) {
	f := newFake(3)
	cfg := testConfig()
	cfg.Keys = 10
	qs := []Quorum{{3, 1, 1}, {3, 2, 2}, {3, 3, 1}}
	rep, err := Sweep(t.Context(), f, cfg, qs)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 3 {
		t.Fatalf("%d results", len(rep.Results))
	}
	for i, r := range rep.Results {
		if r.Quorum != qs[i] || r.Params.Seed != cfg.Seed || r.Ops != cfg.Ops {
			t.Errorf("result %d: quorum %v seed %d ops %d", i, r.Quorum, r.Params.Seed, r.Ops)
		}
	}
	// Each setting wrote its own 10 keys.
	if len(f.keys) != 30 {
		t.Errorf("%d keys written, want 30 (10 per setting)", len(f.keys))
	}
	if _, err := Sweep(t.Context(), f, cfg, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("empty sweep: %v", err)
	}
	// A failing run stops the sweep and keeps what ran.
	bad := cfg
	bad.Keys = 0
	rep, err = Sweep(t.Context(), f, bad, qs)
	if err == nil || rep == nil || len(rep.Results) != 0 {
		t.Errorf("invalid config: %v, %+v", err, rep)
	}
}

// render returns what write writes, failing t on its error.
func render(t *testing.T, write func(io.Writer) error) string {
	t.Helper()
	var buf strings.Builder
	if err := write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestReportJSONRoundTrip(t *testing.T) {
	rep := sweepReport(t)
	js := render(t, rep.WriteJSON)
	got, err := ReadJSON(strings.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, rep) {
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(rep)
		t.Errorf("round trip differs:\n got %s\nwant %s", a, b)
	}
	if !strings.Contains(js, `"quorum": "3/2/2"`) || !strings.Contains(js, `"workload": "f"`) {
		t.Errorf("quorum and workload should marshal as text")
	}
}

func TestReadJSONFile(t *testing.T) {
	rep := sweepReport(t)
	path := filepath.Join(t.TempDir(), "r.json")
	if err := os.WriteFile(path, []byte(render(t, rep.WriteJSON)), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadJSONFile(path)
	if err != nil || !reflect.DeepEqual(got, rep) {
		t.Fatalf("ReadJSONFile: %v, equal %v", err, reflect.DeepEqual(got, rep))
	}
	if _, err := ReadJSONFile(path + ".missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestReadJSONRejects(t *testing.T) {
	for name, in := range map[string]string{
		"not json":         "{",
		"old version":      `{"version": 1, "results": []}`,
		"bad quorum":       `{"version": 2, "results": [{"quorum": "3/4/1"}]}`,
		"null result":      `{"version": 2, "results": [null]}`,
		"huge cdf":         `{"version": 2, "results": [{"quorum": "1/1/1", "read": {"latency": {"cdf": [` + strings.Repeat(`{},`, MaxCDFPoints) + `{}]}}}]}`,
		"bad workload":     `{"version": 2, "results": [{"quorum": "1/1/1", "params": {"workload": "z"}}]}`,
		"huge resurrected": `{"version": 2, "results": [{"quorum": "1/1/1", "consistency": {"resurrected": [` + strings.Repeat(`{},`, MaxLostLimit) + `{}]}}]}`,
	} {
		if _, err := ReadJSON(strings.NewReader(in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	defer func(l int) { reportLimit = l }(reportLimit)
	reportLimit = 1 << 10
	big := `{"version": 1, "title": "` + strings.Repeat("x", reportLimit) + `"}`
	if _, err := ReadJSON(strings.NewReader(big)); !errors.Is(err, ErrBadReport) {
		t.Errorf("oversized report: %v", err)
	}
}

// wellFormed parses the page as strict XML and returns its element names.
func wellFormed(t *testing.T, page string) map[string]int {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(page))
	d.Strict = true
	elems := map[string]int{}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return elems
		}
		if err != nil {
			t.Fatalf("page is not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			elems[se.Name.Local]++
		}
	}
}

func TestReportHTML(t *testing.T) {
	rep := sweepReport(t)
	page := render(t, rep.WriteHTML)
	elems := wellFormed(t, page)
	// read CDF, write CDF, rmw CDF, t-visibility
	if elems["svg"] != 4 {
		t.Errorf("%d charts, want 4", elems["svg"])
	}
	// one line per setting per chart
	if elems["polyline"] != 8 {
		t.Errorf("%d polylines, want 8", elems["polyline"])
	}
	for _, want := range []string{"read latency CDF", "t-visibility", "3/1/1", "3/2/2", "sweep &lt;test&gt; &amp;", "pause", "restore after run"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, banned := range []string{"<script", "<link", "http://", "https://"} {
		if strings.Contains(strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, ""), banned) {
			t.Errorf("page is not self-contained: contains %q", banned)
		}
	}
	if strings.Contains(page, "NaN") || strings.Contains(page, "Inf") {
		t.Errorf("page has non-finite coordinates")
	}
	// An empty report still renders.
	wellFormed(t, render(t, NewReport().WriteHTML))
}

func TestReportText(t *testing.T) {
	rep := sweepReport(t)
	out := render(t, rep.WriteText)
	for _, want := range []string{"workload f (zipfian θ=0.99)", "setting", "3/1/1", "3/2/2", "read p99", "rmw p50", "stale reads", "t-visibility 1ms-2ms", "t-visibility 1s+", "siblings/read", "lost writes", "pause   node 1", "restore after run"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	// The header row names the settings in order, one column each.
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "setting") {
			if f := strings.Fields(l); !reflect.DeepEqual(f, []string{"setting", "3/1/1", "3/2/2"}) {
				t.Errorf("header %q", l)
			}
		}
	}
}

func TestFmtDur(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0", 500: "500ns", 1500: "1.5µs", 999_999: "1000µs", 12_345_678: "12.3ms",
		123 * time.Millisecond: "123ms", 2 * time.Second: "2s", 90 * time.Second: "90s",
	} {
		if got := fmtDur(d); got != want {
			t.Errorf("fmtDur(%d) = %q, want %q", d, got, want)
		}
	}
}

func FuzzReadJSON(f *testing.F) {
	var buf bytes.Buffer
	r := &Result{Quorum: Quorum{3, 2, 2}, Params: testConfig().withDefaults().params()}
	r.Read.Latency = LatencySummary{Count: 2, P50: time.Millisecond, CDF: []CDFPoint{{time.Millisecond, 0.5}, {2 * time.Millisecond, 1}}}
	r.Consistency.TVisibility = []TVisPoint{{Delta: 0, Pairs: 3, Observed: 2, P: 2.0 / 3}}
	r.Consistency.LostChecked, r.Consistency.LostWrites = true, 1
	r.Consistency.Lost = []LostWrite{{Key: "k", ID: 7, Coord: 1, Invoke: time.Millisecond, Ack: 2 * time.Millisecond}}
	r.Consistency.ResurrectedWrites = 2
	r.Consistency.Resurrected = []Resurrection{{Key: "k", ID: 3, By: 7}, {Key: "j", ID: 9, Final: true}}
	r.Consistency.IndeterminateWrites, r.Consistency.UnexpectedValues = 4, 1
	r.Faults = []FaultEvent{{Action: FaultKill, Node: 1}}
	r.ErrorsByKind = map[string]int64{"timeout": 2}
	if err := NewReport(r).WriteJSON(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	// The swept report of the tests, with both settings.
	buf.Reset()
	if err := NewReport(r, &Result{Quorum: Quorum{3, 1, 1}, Canceled: true}).WriteJSON(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"version":2,"results":[]}`))
	f.Add([]byte(`{"version":1,"results":[]}`))
	f.Add([]byte(`{"version":2,"results":[null]}`))
	f.Add([]byte(`{"version":2,"results":[{"quorum":"1/1/1","read":{"latency":{"cdf":[{"latency_ns":-5,"fraction":7}]}}}]}`))
	f.Add([]byte(`{"version":2,"results":[{"quorum":"1/1/1","consistency":{"t_visibility":[{"delta_ns":-1,"p":-3}]}}]}`))
	f.Add([]byte(`{"version":2,"results":[{"quorum":"3/2/2","consistency":{"lost_checked":true,"lost_writes":-4,"resurrected_writes":-1,"lost":[{"key":"\u0000<b>","id":18446744073709551615}],"resurrected":[{"key":"","id":0,"by":0,"final":true}]}}]}`))
	f.Add([]byte(`{"version":2,"results":[{"quorum":"9/9/9","consistency":{"k_staleness":[1,2,3],"siblings":{"mean":1e308,"max":-1,"distribution":[0,0,1]}}}]}`))
	f.Add([]byte(`{"version":2,"title":"<script>","results":[{"quorum":"3/1/1","faults":[{"action":"kill","node":-1}],"errors_by_kind":{"":1},"final_errors":{"x":-1}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := ReadJSON(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrBadReport) {
				t.Fatalf("error %v does not wrap ErrBadReport", err)
			}
			return
		}
		var out bytes.Buffer
		if err := rep.WriteJSON(&out); err != nil {
			t.Fatalf("accepted report does not encode: %v", err)
		}
		rep2, err := ReadJSON(&out)
		if err != nil {
			t.Fatalf("re-read: %v", err)
		}
		if !reflect.DeepEqual(rep, rep2) {
			t.Fatalf("decode(encode(decode(b))) != decode(b)")
		}
		// Whatever was accepted renders without panicking.
		if err := rep.WriteText(io.Discard); err != nil {
			t.Fatal(err)
		}
		if err := rep.WriteHTML(io.Discard); err != nil {
			t.Fatal(err)
		}
	})
}
