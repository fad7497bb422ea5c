package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/quorumkv/quorumkv/internal/devcluster"
	"github.com/quorumkv/quorumkv/internal/excerpt"
)

// devConsoleHelp lists the commands dev reads from its standard input.
const devConsoleHelp = `commands (type here, then Enter):
  nodes           each node's state and pid
  kill NODE       SIGKILL the node, as a crash would (e.g. kill n2)
  restart NODE    start a killed or crashed node again on its ports and data
  pause NODE      freeze it with SIGSTOP (sockets open, nothing answered)
  resume NODE     unfreeze it with SIGCONT
  help            this list
`

// maxConsoleLine bounds a line of console input; longer lines are refused.
const maxConsoleLine = 1024

// devConsole reads commands from r until EOF or a read error (a closed or
// absent terminal ends the console, not the cluster) and runs them one at a
// time against c, writing results to w. A line longer than maxConsoleLine
// is refused whole.
func devConsole(r io.Reader, w io.Writer, c *devcluster.Cluster) {
	if r == nil {
		return
	}
	br := bufio.NewReaderSize(r, maxConsoleLine)
	for {
		line, tooLong, err := readConsoleLine(br)
		if tooLong {
			fmt.Fprintf(w, "quorumkv dev: a command line longer than %d bytes was ignored\n", maxConsoleLine)
		} else if out := devCommand(c, line); out != "" {
			fmt.Fprint(w, out)
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			fmt.Fprintf(w, "quorumkv dev: console: %v; commands are no longer read (Ctrl-C still stops every node)\n", err)
			return
		}
	}
}

// readConsoleLine returns the next line without its end; tooLong reports a
// line over the reader's buffer, whose rest was skipped.
func readConsoleLine(br *bufio.Reader) (line string, tooLong bool, err error) {
	b, isPrefix, err := br.ReadLine()
	line = string(b)
	for isPrefix && err == nil {
		tooLong = true
		_, isPrefix, err = br.ReadLine()
	}
	return line, tooLong, err
}

// devCommand runs one console line and returns what to print.
func devCommand(c *devcluster.Cluster, line string) string {
	f := strings.Fields(line)
	if len(f) == 0 {
		return ""
	}
	verb := strings.ToLower(f[0])
	switch verb {
	case "help", "?":
		return devConsoleHelp
	case "nodes", "status":
		if len(f) != 1 {
			return fmt.Sprintf("quorumkv dev: %s takes no arguments\n", verb)
		}
		return devNodes(c)
	case "kill", "restart", "pause", "resume":
	default:
		return fmt.Sprintf("quorumkv dev: unknown command %q; type help for the list\n", excerpt.Of(f[0], 40))
	}
	if len(f) != 2 {
		return fmt.Sprintf("quorumkv dev: %s takes one node, e.g. %s n2\n", verb, verb)
	}
	agents := c.Agents()
	i, err := devNodeIndex(f[1], len(agents))
	if err != nil {
		return fmt.Sprintf("quorumkv dev: %s: %v\n", verb, err)
	}
	id := agents[i].ID
	switch verb {
	case "kill":
		err = c.Kill(i)
	case "restart":
		err = c.Restart(i)
	case "pause":
		err = c.Pause(i)
	case "resume":
		err = c.Resume(i)
	}
	if err != nil {
		return fmt.Sprintf("quorumkv dev: %v\n", err)
	}
	switch verb {
	case "kill":
		return fmt.Sprintf("quorumkv dev: %s killed; type restart %s to start it again\n", id, id)
	case "restart":
		return fmt.Sprintf("quorumkv dev: %s restarted (pid %d) and joined\n", id, c.Agents()[i].PID)
	case "pause":
		return fmt.Sprintf("quorumkv dev: %s paused; type resume %s to unfreeze it\n", id, id)
	default:
		return fmt.Sprintf("quorumkv dev: %s resumed\n", id)
	}
}

// devNodeIndex parses a node as its id ("n2") or its number ("2").
func devNodeIndex(s string, n int) (int, error) {
	num := strings.TrimPrefix(strings.ToLower(s), "n")
	k, err := strconv.Atoi(num)
	if err != nil || k < 1 || k > n {
		return 0, fmt.Errorf("no node %q: the nodes are n1 to n%d", excerpt.Of(s, 40), n)
	}
	return k - 1, nil
}

func devNodes(c *devcluster.Cluster) string {
	var b strings.Builder
	for _, a := range c.Agents() {
		state := "down"
		switch {
		case a.Paused:
			state = "paused"
		case a.Running:
			state = "running"
		}
		fmt.Fprintf(&b, "  %s  %-7s  pid %d  http %s\n", a.ID, state, a.PID, a.HTTP)
	}
	return b.String()
}
