package bench

import (
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// WriteHTML writes a self-contained HTML page: the summary table, a latency
// CDF chart per request type (log-scaled latency axis, one line per
// setting), the t-visibility curves (P(read observes a write) against the
// time since it was acknowledged, one line per setting), fault events and
// lost and resurrected writes, and the consistency violations (Violations)
// first. Charts are inline SVG; the page loads no script, style sheet
// or font. The output is also well-formed XML.
func (rep *Report) WriteHTML(w io.Writer) error {
	type table struct {
		Head []string
		Rows [][]string
	}
	type detail struct {
		Setting string
		Lines   []string
	}
	var data struct {
		Title      string
		Params     string
		Summary    table
		Charts     []template.HTML
		Details    []detail
		Violations []string
	}
	data.Violations = rep.Violations()
	data.Title = rep.Title
	if data.Title == "" {
		data.Title = "quorumkv bench"
	}
	if len(rep.Results) > 0 {
		data.Params = describe(rep.Results[0].Params)
		rows := rep.rows()
		data.Summary = table{Head: rows[0], Rows: rows[1:]}
	}
	for _, op := range []struct {
		name string
		get  func(r *Result) *OpStats
	}{
		{"read", func(r *Result) *OpStats { return &r.Read }},
		{"write", func(r *Result) *OpStats { return &r.Write }},
		{"read-modify-write", func(r *Result) *OpStats { return &r.RMW }},
	} {
		c := chart{
			Title:  op.name + " latency CDF",
			XLabel: "latency (log scale)",
			YLabel: "fraction of requests",
			LogX:   true,
		}
		for _, r := range rep.Results {
			s := series{Name: r.Quorum.String()}
			for _, p := range op.get(r).Latency.CDF {
				s.Pts = append(s.Pts, pt{X: float64(p.Latency), Y: p.Fraction})
			}
			c.Series = append(c.Series, s)
		}
		if c.hasPoints() {
			data.Charts = append(data.Charts, template.HTML(c.svg()))
		}
	}
	tv := chart{
		Title:  "t-visibility: P(read observes a write acknowledged t earlier, other coordinator)",
		XLabel: "t since acknowledgement (bucket lower bound)",
		YLabel: "P(consistent)",
	}
	ds := rep.deltas()
	for _, d := range ds {
		tv.XTicks = append(tv.XTicks, fmtDur(d))
	}
	for _, r := range rep.Results {
		s := series{Name: r.Quorum.String()}
		for _, p := range r.Consistency.TVisibility {
			if p.Pairs == 0 {
				continue
			}
			for i, d := range ds {
				if d == p.Delta {
					s.Pts = append(s.Pts, pt{X: float64(i), Y: p.P})
				}
			}
		}
		tv.Series = append(tv.Series, s)
	}
	// Always drawn, even empty, so the page has the same charts every time.
	data.Charts = append(data.Charts, template.HTML(tv.svg()))

	for _, r := range rep.Results {
		var sb strings.Builder
		rep.writeDetails(&sb, r)
		if sb.Len() == 0 {
			continue
		}
		lines := strings.Split(strings.TrimSpace(sb.String()), "\n")
		data.Details = append(data.Details, detail{Setting: r.Quorum.String(), Lines: lines[1:]})
	}
	if err := pageTemplate.Execute(w, data); err != nil {
		return fmt.Errorf("write report html: %w", err)
	}
	return nil
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8"/>
<title>{{.Title}}</title>
<style>
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
td:first-child { text-align: left; }
svg { display: block; margin: 1.5em 0; }
pre { background: #f6f6f6; padding: 0.5em; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p>{{.Params}}</p>
{{if .Violations}}<h2>Consistency violated</h2>
<ul>{{range .Violations}}<li>{{.}}</li>{{end}}</ul>
{{end}}
<h2>Summary</h2>
<table>
<tr>{{range .Summary.Head}}<th>{{.}}</th>{{end}}</tr>
{{range .Summary.Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>
<h2>Charts</h2>
{{range .Charts}}{{.}}
{{end}}
{{if .Details}}<h2>Faults, lost and resurrected writes, errors</h2>
{{range .Details}}<h3>{{.Setting}}</h3>
<pre>{{range .Lines}}{{.}}
{{end}}</pre>
{{end}}{{end}}
</body>
</html>
`))

type pt struct{ X, Y float64 }

type series struct {
	Name string
	Pts  []pt
}

// chart is a line chart with y in [0, 1]: a log or linear x axis, or a
// categorical one when XTicks is set (x = tick index).
type chart struct {
	Title, XLabel, YLabel string
	LogX                  bool
	XTicks                []string
	Series                []series
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"}

const (
	svgW, svgH                 = 760, 380
	padL, padR, padT, padB     = 64, 130, 34, 48
	plotW, plotH               = svgW - padL - padR, svgH - padT - padB
	minLogX                    = 1e3 // 1µs in ns: the histogram's resolution
	maxSeriesPoints            = 4 * MaxCDFPoints
	legendLine, legendFontSize = 18, 12
)

func (c *chart) hasPoints() bool {
	for _, s := range c.Series {
		if len(s.Pts) > 0 {
			return true
		}
	}
	return false
}

// finite clamps v into [lo, hi], mapping NaN to lo, so untrusted input
// (a report read back from JSON) cannot put NaN or huge numbers in the SVG.
func finite(v, lo, hi float64) float64 {
	if math.IsNaN(v) || v < lo {
		return lo
	}
	return min(v, hi)
}

func (c *chart) svg() string {
	// x range
	xmin, xmax := math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		for _, p := range s.Pts {
			x := p.X
			if c.LogX {
				x = math.Log10(finite(x, minLogX, float64(HistogramMax)))
			}
			x = finite(x, -1e12, 1e12)
			xmin, xmax = min(xmin, x), max(xmax, x)
		}
	}
	if c.XTicks != nil {
		xmin, xmax = 0, float64(max(len(c.XTicks)-1, 1))
	}
	if c.LogX && xmin <= xmax {
		xmin, xmax = math.Floor(xmin), math.Ceil(xmax)
	}
	if !(xmin < xmax) {
		xmin, xmax = 0, 1
		if c.LogX {
			xmin, xmax = 3, 6
		}
	}
	sx := func(x float64) float64 {
		if c.LogX {
			x = math.Log10(finite(x, minLogX, float64(HistogramMax)))
		}
		x = finite(x, xmin, xmax)
		return padL + (x-xmin)/(xmax-xmin)*plotW
	}
	sy := func(y float64) float64 { return padT + (1-finite(y, 0, 1))*plotH }
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`, svgW, svgH, svgW, svgH)
	fmt.Fprintf(&b, `<title>%s</title>`, html.EscapeString(c.Title))
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14">%s</text>`, padL, html.EscapeString(c.Title))
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`, padL, padT, plotW, plotH)
	// y grid and labels
	for i := 0; i <= 5; i++ {
		y := float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%s" y2="%s" stroke="#eee"/>`, padL, padL+plotW, f(sy(y)), f(sy(y)))
		fmt.Fprintf(&b, `<text x="%d" y="%s" text-anchor="end">%.1f</text>`, padL-6, f(sy(y)+4), y)
	}
	// x grid and labels
	switch {
	case c.XTicks != nil:
		for i, t := range c.XTicks {
			x := padL + float64(i)/(xmax-xmin)*plotW
			fmt.Fprintf(&b, `<line x1="%s" x2="%s" y1="%d" y2="%d" stroke="#eee"/>`, f(x), f(x), padT, padT+plotH)
			fmt.Fprintf(&b, `<text x="%s" y="%d" text-anchor="middle">%s</text>`, f(x), padT+plotH+16, html.EscapeString(t))
		}
	case c.LogX:
		for e := xmin; e <= xmax; e++ {
			x := padL + (e-xmin)/(xmax-xmin)*plotW
			fmt.Fprintf(&b, `<line x1="%s" x2="%s" y1="%d" y2="%d" stroke="#eee"/>`, f(x), f(x), padT, padT+plotH)
			fmt.Fprintf(&b, `<text x="%s" y="%d" text-anchor="middle">%s</text>`, f(x), padT+plotH+16, html.EscapeString(fmtDur(time.Duration(math.Pow(10, e)))))
		}
	default:
		for i := 0; i <= 4; i++ {
			v := xmin + float64(i)/4*(xmax-xmin)
			x := sx(v)
			fmt.Fprintf(&b, `<text x="%s" y="%d" text-anchor="middle">%s</text>`, f(x), padT+plotH+16, strconv.FormatFloat(v, 'g', 3, 64))
		}
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`, padL+plotW/2, svgH-8, html.EscapeString(c.XLabel))
	fmt.Fprintf(&b, `<text x="14" y="%d" text-anchor="middle" transform="rotate(-90 14 %d)">%s</text>`, padT+plotH/2, padT+plotH/2, html.EscapeString(c.YLabel))
	// series and legend
	for i, s := range c.Series {
		color := palette[i%len(palette)]
		if len(s.Pts) > 0 {
			var pts []string
			for _, p := range s.Pts[:min(len(s.Pts), maxSeriesPoints)] {
				x := p.X
				if c.XTicks != nil {
					x = padL + finite(x, xmin, xmax)/(xmax-xmin)*plotW
				} else {
					x = sx(x)
				}
				pts = append(pts, f(x)+","+f(sy(p.Y)))
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.8" points="%s"/>`, color, strings.Join(pts, " "))
			if c.XTicks != nil {
				for _, p := range pts {
					x, y, _ := strings.Cut(p, ",")
					fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`, x, y, color)
				}
			}
		}
		ly := padT + 10 + i*legendLine
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="3"/>`, padL+plotW+12, padL+plotW+32, ly, ly, color)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="%d">%s</text>`, padL+plotW+38, ly+4, legendFontSize, html.EscapeString(s.Name))
	}
	b.WriteString(`</svg>`)
	return b.String()
}
