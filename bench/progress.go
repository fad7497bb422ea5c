package bench

import (
	"fmt"
	"io"
	"time"
)

// Progress is one progress report.
type Progress struct {
	Label    string        // Config.Label
	Elapsed  time.Duration // since the workload started
	Ops      int64         // operations completed so far, failed ones included
	Rate     float64       // operations per second over the last interval
	Errors   int64         // failed operations so far
	Final    bool          // the last report of the run; Rate is the run's average
	Terminal bool          // redraw in place rather than print a line
}

// String formats p without line control, e.g.
// "3/2/2   12.0s      120345 ops    10021 ops/s        3 errors".
func (p Progress) String() string {
	label := ""
	if p.Label != "" {
		label = p.Label + " "
	}
	return fmt.Sprintf("%s%7.1fs %11d ops %8.0f ops/s %8d errors", label, p.Elapsed.Seconds(), p.Ops, p.Rate, p.Errors)
}

// writeProgress prints p: on a terminal it returns the cursor to the start
// of the line, rewrites it and clears what is left of a longer earlier line
// ("\x1b[K"), ending with a newline only when p is final; otherwise it prints
// one plain line per report. Write errors are ignored: progress is advisory.
func writeProgress(w io.Writer, p Progress) {
	if p.Terminal {
		end := ""
		if p.Final {
			end = "\n"
		}
		fmt.Fprintf(w, "\r%s\x1b[K%s", p, end)
		return
	}
	fmt.Fprintf(w, "%s\n", p)
}
