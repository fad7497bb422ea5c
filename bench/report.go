package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Report limits.
const (
	// ReportVersion is the JSON format version WriteJSON writes and
	// ReadJSON accepts. Version 2: consistency judged by package oracle
	// (write ids are the oracle's; indeterminate, resurrected, unexpected
	// and foreign counts).
	ReportVersion = 2
	// MaxReportBytes caps the JSON ReadJSON accepts.
	MaxReportBytes = 64 << 20
)

// reportLimit is MaxReportBytes; tests lower it.
var reportLimit = MaxReportBytes

// Report is the results of one or more runs, side by side (one per quorum
// setting in a sweep).
type Report struct {
	Version int       `json:"version"`
	Title   string    `json:"title,omitempty"`
	Results []*Result `json:"results"`
}

// NewReport returns a report of the given results.
func NewReport(results ...*Result) *Report {
	return &Report{Version: ReportVersion, Results: results}
}

// WriteJSON writes the report as indented JSON.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return fmt.Errorf("write report json: %w", err)
	}
	return nil
}

// ReadJSON reads a report written by WriteJSON. The input is untrusted: it
// is capped at MaxReportBytes and every list at the cap the writer obeys,
// so rendering a report read here stays bounded.
func ReadJSON(r io.Reader) (*Report, error) {
	b, err := io.ReadAll(io.LimitReader(r, int64(reportLimit)+1))
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	if len(b) > reportLimit {
		return nil, fmt.Errorf("read report: more than %d bytes: %w", reportLimit, ErrBadReport)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("read report: %w: %w", ErrBadReport, err)
	}
	if err := rep.validate(); err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	rep.canonicalize()
	return &rep, nil
}

// ReadJSONFile is ReadJSON of the file at path.
func ReadJSONFile(path string) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read report: %w", err)
	}
	defer f.Close()
	return ReadJSON(f)
}

// canonicalize makes empty optional lists and maps nil, as WriteJSON omits
// them: a report read back from its own JSON then equals the one written.
func (rep *Report) canonicalize() {
	for _, r := range rep.Results {
		if len(r.Consistency.Lost) == 0 {
			r.Consistency.Lost = nil
		}
		if len(r.Consistency.Resurrected) == 0 {
			r.Consistency.Resurrected = nil
		}
		if len(r.Faults) == 0 {
			r.Faults = nil
		}
		if len(r.ErrorsByKind) == 0 {
			r.ErrorsByKind = nil
		}
		if len(r.FinalErrors) == 0 {
			r.FinalErrors = nil
		}
		for _, st := range []*OpStats{&r.Read, &r.Write, &r.RMW} {
			if len(st.Latency.CDF) == 0 {
				st.Latency.CDF = nil
			}
			if st.Service != nil && len(st.Service.CDF) == 0 {
				st.Service.CDF = nil
			}
		}
	}
}

func (rep *Report) validate() error {
	bad := func(what string, n, limit int) error {
		if n > limit {
			return fmt.Errorf("%s: %d entries, at most %d: %w", what, n, limit, ErrBadReport)
		}
		return nil
	}
	if rep.Version != ReportVersion {
		return fmt.Errorf("version %d, want %d: %w", rep.Version, ReportVersion, ErrBadReport)
	}
	if err := bad("results", len(rep.Results), MaxSettings); err != nil {
		return err
	}
	for _, r := range rep.Results {
		if r == nil {
			return fmt.Errorf("null result: %w", ErrBadReport)
		}
		if err := r.Quorum.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrBadReport, err)
		}
		c := &r.Consistency
		for _, err := range []error{
			bad("k_staleness", len(c.KStaleness), MaxHistory+1),
			bad("t_visibility", len(c.TVisibility), MaxDeltas),
			bad("siblings", len(c.Siblings.Distribution), MaxSiblingBucket+1),
			bad("lost", len(c.Lost), MaxLostLimit),
			bad("resurrected", len(c.Resurrected), MaxLostLimit),
			bad("faults", len(r.Faults), 2*MaxFaultSteps),
			bad("errors_by_kind", len(r.ErrorsByKind), MaxErrorKinds),
			bad("final_errors", len(r.FinalErrors), MaxErrorKinds),
		} {
			if err != nil {
				return err
			}
		}
		for _, st := range []OpStats{r.Read, r.Write, r.RMW} {
			if err := bad("cdf", len(st.Latency.CDF), MaxCDFPoints); err != nil {
				return err
			}
			if st.Service != nil {
				if err := bad("cdf", len(st.Service.CDF), MaxCDFPoints); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// WriteText writes the side-by-side summary table (one column per result),
// then lost writes, errors and fault events per result.
func (rep *Report) WriteText(w io.Writer) error {
	var sb strings.Builder
	if rep.Title != "" {
		fmt.Fprintf(&sb, "%s\n", rep.Title)
	}
	if len(rep.Results) == 0 {
		sb.WriteString("no results\n")
		_, err := io.WriteString(w, sb.String())
		return err
	}
	fmt.Fprintf(&sb, "%s\n\n", describe(rep.Results[0].Params))
	writeTable(&sb, rep.rows())
	for _, r := range rep.Results {
		rep.writeDetails(&sb, r)
	}
	if v := rep.Violations(); len(v) > 0 {
		sb.WriteString("\nCONSISTENCY VIOLATED:\n")
		for _, line := range v {
			sb.WriteString("  " + line + "\n")
		}
	}
	if _, err := io.WriteString(w, sb.String()); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// writeTable aligns rows in columns: the first (labels) left-aligned, the
// values right-aligned, two spaces apart. Widths count runes, not bytes
// (labels use "≥" and "µ").
func writeTable(sb *strings.Builder, rows [][]string) {
	var width []int
	for _, row := range rows {
		for i, cell := range row {
			if i >= len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], utf8.RuneCountInString(cell))
		}
	}
	for _, row := range rows {
		for i, cell := range row {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(cell))
			if i == 0 {
				sb.WriteString(cell + pad)
			} else {
				sb.WriteString("  " + pad + cell)
			}
		}
		sb.WriteString("\n")
	}
}

// describe summarises the run parameters in one line.
func describe(p Params) string {
	dist := p.Distribution.String()
	if p.Distribution == DistZipfian || p.Distribution == DistLatest {
		dist += " θ=" + strconv.FormatFloat(p.Theta, 'g', 4, 64)
	}
	loop := "closed loop"
	if p.Rate > 0 {
		loop = fmt.Sprintf("open loop at %.0f ops/s", p.Rate)
	}
	limit := []string{}
	if p.Duration > 0 {
		limit = append(limit, p.Duration.String())
	}
	if p.Ops > 0 {
		limit = append(limit, strconv.FormatInt(p.Ops, 10)+" ops")
	}
	s := fmt.Sprintf("workload %s (%s), %d keys, %d B values, %d workers, %s, %s, coordinators %s, seed %d",
		p.Workload, dist, p.Keys, p.ValueSize, p.Concurrency, loop, strings.Join(limit, " or "), p.Coordinators, p.Seed)
	if p.Delay != "" {
		s += ", delay " + p.Delay
	}
	if p.Schedule != "" {
		s += ", faults " + p.Schedule
	}
	return s
}

// rows builds the summary table: a header row, then one row per metric.
func (rep *Report) rows() [][]string {
	rs := rep.Results
	var rows [][]string
	add := func(label string, cell func(r *Result) string) {
		row := []string{label}
		for _, r := range rs {
			row = append(row, cell(r))
		}
		rows = append(rows, row)
	}
	some := func(f func(r *Result) bool) bool { return slices.ContainsFunc(rs, f) }

	add("setting", func(r *Result) string { return r.Quorum.String() })
	add("ops/s", func(r *Result) string { return strconv.FormatFloat(r.Throughput, 'f', 0, 64) })
	add("ops", func(r *Result) string { return strconv.FormatInt(r.Ops, 10) })
	add("errors", func(r *Result) string { return strconv.FormatInt(r.Errors, 10) })
	if some(func(r *Result) bool { return r.Missed > 0 }) {
		add("missed (behind rate)", func(r *Result) string { return strconv.FormatInt(r.Missed, 10) })
	}
	lat := func(name string, get func(r *Result) *OpStats) {
		if !some(func(r *Result) bool { return get(r).Latency.Count > 0 }) {
			return
		}
		for _, q := range []struct {
			label string
			v     func(s *LatencySummary) time.Duration
		}{
			{"p50", func(s *LatencySummary) time.Duration { return s.P50 }},
			{"p90", func(s *LatencySummary) time.Duration { return s.P90 }},
			{"p99", func(s *LatencySummary) time.Duration { return s.P99 }},
			{"p99.9", func(s *LatencySummary) time.Duration { return s.P999 }},
			{"max", func(s *LatencySummary) time.Duration { return s.Max }},
		} {
			add(name+" "+q.label, func(r *Result) string {
				s := &get(r).Latency
				if s.Count == 0 {
					return "-"
				}
				return fmtDur(q.v(s))
			})
		}
	}
	lat("read", func(r *Result) *OpStats { return &r.Read })
	lat("write", func(r *Result) *OpStats { return &r.Write })
	lat("rmw", func(r *Result) *OpStats { return &r.RMW })

	add("stale reads", func(r *Result) string {
		c := &r.Consistency
		return fmt.Sprintf("%.3f%% (%d)", 100*c.StaleFraction, c.StaleReads)
	})
	add("k-staleness mean/max", func(r *Result) string {
		c := &r.Consistency
		s := fmt.Sprintf("%.2f/%d", c.MeanK, c.MaxK)
		if c.KCapped > 0 {
			s += "+"
		}
		return s
	})
	ds := rep.deltas()
	for i, d := range ds {
		label := "t-visibility " + fmtDur(d) + "+"
		if i+1 < len(ds) {
			label = "t-visibility " + fmtDur(d) + "-" + fmtDur(ds[i+1])
		}
		add(label, func(r *Result) string {
			for _, p := range r.Consistency.TVisibility {
				if p.Delta == d && p.Pairs > 0 {
					return fmt.Sprintf("%.4f (%d)", p.P, p.Pairs)
				}
			}
			return "n/a"
		})
	}
	add("siblings/read mean/max", func(r *Result) string {
		s := &r.Consistency.Siblings
		return fmt.Sprintf("%.3f/%d", s.Mean, s.Max)
	})
	add("lost writes", func(r *Result) string {
		c := &r.Consistency
		if !c.LostChecked {
			return "not checked"
		}
		s := strconv.FormatInt(c.LostWrites, 10)
		if c.UnverifiedWrites > 0 {
			s += fmt.Sprintf(" (%d unverified)", c.UnverifiedWrites)
		}
		return s
	})
	add("resurrected writes", func(r *Result) string {
		return strconv.FormatInt(r.Consistency.ResurrectedWrites, 10)
	})
	add("indeterminate writes", func(r *Result) string {
		return strconv.FormatInt(r.Consistency.IndeterminateWrites, 10)
	})
	if some(func(r *Result) bool { return r.Consistency.UnexpectedValues > 0 }) {
		add("unexpected values", func(r *Result) string {
			return strconv.FormatInt(r.Consistency.UnexpectedValues, 10)
		})
	}
	kinds := map[string]bool{}
	for _, r := range rs {
		for k := range r.ErrorsByKind {
			kinds[k] = true
		}
	}
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		add("errors: "+k, func(r *Result) string { return strconv.FormatInt(r.ErrorsByKind[k], 10) })
	}
	if some(func(r *Result) bool { return len(r.Faults) > 0 }) {
		add("fault events", func(r *Result) string { return strconv.Itoa(len(r.Faults)) })
	}
	return rows
}

// deltas returns the union of the results' t-visibility buckets, sorted.
func (rep *Report) deltas() []time.Duration {
	var ds []time.Duration
	for _, r := range rep.Results {
		for _, p := range r.Consistency.TVisibility {
			ds = append(ds, p.Delta)
		}
	}
	slices.Sort(ds)
	return slices.Compact(ds)
}

func (rep *Report) writeDetails(sb *strings.Builder, r *Result) {
	c := &r.Consistency
	if len(c.Lost) == 0 && len(c.Resurrected) == 0 && len(r.Faults) == 0 && len(r.FinalErrors) == 0 && !r.Canceled {
		return
	}
	fmt.Fprintf(sb, "\n%s:\n", r.Quorum)
	if r.Canceled {
		sb.WriteString("  canceled before the end; lost writes not checked\n")
	}
	if len(c.Lost) > 0 {
		fmt.Fprintf(sb, "  lost writes (%d of %d listed):\n", len(c.Lost), c.LostWrites)
		for _, l := range c.Lost {
			fmt.Fprintf(sb, "    %s write %d via node %d, sent at %s, acked at %s\n", l.Key, l.ID, l.Coord, fmtDur(l.Invoke), fmtDur(l.Ack))
		}
	}
	if len(c.Resurrected) > 0 {
		fmt.Fprintf(sb, "  resurrected writes (%d of %d listed):\n", len(c.Resurrected), c.ResurrectedWrites)
		for _, x := range c.Resurrected {
			how := "returned with"
			if x.Final {
				how = "in the final read, superseded by"
			}
			by := "a write no longer in memory"
			if x.By != 0 {
				by = "write " + strconv.FormatUint(uint64(x.By), 10)
			}
			fmt.Fprintf(sb, "    %s write %d %s %s\n", x.Key, x.ID, how, by)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(r.FinalErrors)) {
		fmt.Fprintf(sb, "  final check errors: %s %d\n", k, r.FinalErrors[k])
	}
	if len(r.Faults) > 0 {
		sb.WriteString("  faults:\n")
		for _, f := range r.Faults {
			fmt.Fprintf(sb, "    %s\n", f)
		}
	}
}

// Violations lists, one line per setting, the promises a run broke. Every
// setting promises that no acknowledged write is lost (W >= 1 replicas
// stored it, and hinted handoff and anti-entropy must spread it), that no
// superseded value comes back, and that no value appears that the client
// never wrote to that key; these hold at every N/R/W, with or without
// faults. Stale reads are a measurement, not a violation: R+W <= N allows
// them, and faults (sloppy quorums) allow them at any setting.
func (rep *Report) Violations() []string {
	var out []string
	for _, r := range rep.Results {
		c := &r.Consistency
		var what []string
		if c.LostChecked && c.LostWrites > 0 {
			what = append(what, fmt.Sprintf("%d acknowledged write(s) lost", c.LostWrites))
		}
		if c.ResurrectedWrites > 0 {
			what = append(what, fmt.Sprintf("%d superseded write(s) resurrected", c.ResurrectedWrites))
		}
		if c.UnexpectedValues > 0 {
			what = append(what, fmt.Sprintf("%d value(s) never written to their key", c.UnexpectedValues))
		}
		if len(what) > 0 {
			out = append(out, r.Quorum.String()+": "+strings.Join(what, ", "))
		}
	}
	return out
}

// String renders the event for reports.
func (f FaultEvent) String() string {
	s := fmt.Sprintf("%8s %-7s node %d", fmtDur(f.Elapsed), f.Action, f.Node)
	if f.Restore {
		s += " (restore after run)"
	} else {
		s += " (planned " + fmtDur(f.At) + ")"
	}
	if f.Err != "" {
		s += ": " + f.Err
	}
	return s
}

// fmtDur renders a duration with about three significant digits.
func fmtDur(d time.Duration) string {
	switch a := d.Abs(); {
	case a == 0:
		return "0"
	case a < time.Microsecond:
		return strconv.FormatInt(int64(d), 10) + "ns"
	case a < time.Millisecond:
		return fmt3(float64(d)/1e3) + "µs"
	case a < time.Second:
		return fmt3(float64(d)/1e6) + "ms"
	default:
		return fmt3(d.Seconds()) + "s"
	}
}

// fmt3 prints v with two decimals below 10, one below 100, none above.
func fmt3(v float64) string {
	prec := 0
	switch a := max(v, -v); {
	case a < 10:
		prec = 2
	case a < 100:
		prec = 1
	}
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if prec > 0 {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
