package resp

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// infoSections are INFO's sections in order; the default ones are shown
// by a bare INFO, "all" shows every one.
var infoSections = []struct {
	name    string
	deflt   bool
	section func(c *conn, b *strings.Builder)
}{
	{"server", true, (*conn).infoServer},
	{"clients", true, (*conn).infoClients},
	{"stats", true, (*conn).infoStats},
	{"quorumkv", true, (*conn).infoCluster},
	{"commandstats", false, (*conn).infoCommandStats},
}

// cmdInfo answers INFO [section ...] with "name:value" lines under
// "# Section" headers, as Redis does.
func (c *conn) cmdInfo(args [][]byte) {
	want := map[string]bool{}
	for _, a := range args[1:] {
		want[strings.ToLower(string(a))] = true
	}
	all := want["all"] || want["everything"]
	deflt := len(want) == 0 || want["default"]
	var b strings.Builder
	for _, s := range infoSections {
		if all || want[s.name] || (deflt && s.deflt) {
			if b.Len() > 0 {
				b.WriteString("\r\n")
			}
			fmt.Fprintf(&b, "# %s\r\n", strings.ToUpper(s.name[:1])+s.name[1:])
			s.section(c, &b)
		}
	}
	c.bulkString(b.String())
}

func infoLine(b *strings.Builder, k string, v any) {
	fmt.Fprintf(b, "%s:%v\r\n", k, v)
}

func (c *conn) infoServer(b *strings.Builder) {
	infoLine(b, "redis_version", "7.0.0") // what clients that parse it expect; see quorumkv_version
	infoLine(b, "quorumkv_version", c.s.cfg.Version)
	infoLine(b, "redis_mode", "standalone")
	infoLine(b, "os", runtime.GOOS+" "+runtime.GOARCH)
	infoLine(b, "go_version", runtime.Version())
	infoLine(b, "process_id", os.Getpid())
	infoLine(b, "tcp_port", portOf(c.s.Addr()))
	up := time.Since(c.s.cfg.Started)
	infoLine(b, "uptime_in_seconds", int64(up.Seconds()))
	infoLine(b, "uptime_in_days", int64(up.Hours()/24))
}

func portOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		return addr[i+1:]
	}
	return addr
}

func (c *conn) infoClients(b *strings.Builder) {
	infoLine(b, "connected_clients", c.s.connCount())
	infoLine(b, "maxclients", maxConns)
}

func (c *conn) infoStats(b *strings.Builder) {
	st := &c.s.stats
	infoLine(b, "total_connections_received", st.connsTotal.Load())
	infoLine(b, "rejected_connections", st.rejectedConns.Load())
	infoLine(b, "total_commands_processed", st.commands.Load())
	infoLine(b, "total_error_replies", st.errors.Load())
	infoLine(b, "keyspace_hits", st.getHits.Load())
	infoLine(b, "keyspace_misses", st.getMisses.Load())
	// Reads of keys with several live siblings: GET and MGET answered one
	// of them (the latest; QGET shows all), hiding the count below.
	infoLine(b, "get_sibling_reads", st.siblingReads.Load())
	infoLine(b, "get_siblings_hidden", st.siblingsHidden.Load())
	infoLine(b, "quorum_failures", st.quorumFailures.Load())
	infoLine(b, "plain_writes", st.setsSuperseding.Load())
	infoLine(b, "context_writes", st.qsets.Load())
	infoLine(b, "deletes_written", st.deletesSent.Load())
	// Node-wide, both fronts: writes that left their key with siblings,
	// and those at or over the warning threshold (firsthour, issue 19).
	in := c.s.b.Info()
	infoLine(b, "sibling_writes", in.SiblingWrites)
	infoLine(b, "sibling_warnings", in.SiblingWarnings)
}

func (c *conn) infoCluster(b *strings.Builder) {
	in := c.s.b.Info()
	d := c.s.cfg.Defaults
	infoLine(b, "node_id", in.NodeID)
	infoLine(b, "http_addr", in.HTTPAddr)
	infoLine(b, "resp_addr", c.s.Addr())
	infoLine(b, "ring_members", in.RingMembers)
	infoLine(b, "members_alive", in.MembersAlive)
	infoLine(b, "partitions", in.Partitions)
	infoLine(b, "default_n", d.N)
	// The N of requests that give none: the ring's size when it is
	// smaller than default_n (durability reduced).
	infoLine(b, "effective_n", in.EffectiveN)
	infoLine(b, "default_r", d.R)
	infoLine(b, "default_w", d.W)
	infoLine(b, "default_timeout_ms", d.Timeout.Milliseconds())
	infoLine(b, "sync", in.Sync)
	p, _ := c.params.FitRing(d, in.RingMembers)
	p = p.WithDefaults(d)
	infoLine(b, "connection_quorum", fmt.Sprintf("n=%d,r=%d,w=%d,pr=%d,pw=%d,dw=%d,timeout_ms=%d",
		p.N, p.R, p.W, p.PR, p.PW, p.DW, p.Timeout.Milliseconds()))
	for _, m := range in.Members {
		infoLine(b, "member_"+m.ID, fmt.Sprintf("state=%s,on_ring=%t,http=%s,resp=%s", m.State, m.OnRing, m.HTTP, m.RESP))
	}
}

func (c *conn) infoCommandStats(b *strings.Builder) {
	for _, cmd := range c.s.sortedCommands() {
		if v := cmd.calls.Load(); v > 0 {
			infoLine(b, "cmdstat_"+cmd.name, "calls="+itoa(v))
		}
	}
}

func (s *Server) sortedCommands() []*command {
	out := make([]*command, 0, len(s.cmd))
	for _, c := range s.cmd {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *command) int { return strings.Compare(a.name, b.name) })
	return out
}
