package metric

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegister(t *testing.T) {
	c := Counter("x_total", "x help")
	v := CounterVec("y_total", "y help", "kind")
	g := GaugeFunc("z", "z help", func() float64 { return 7 })
	if err := Register(nil, "nothing", c, v, g); err != nil {
		t.Fatalf("nil registerer: %v", err)
	}
	reg := prometheus.NewRegistry()
	if err := Register(reg, "test", c, v, g); err != nil {
		t.Fatal(err)
	}
	c.Inc()
	v.WithLabelValues("a").Add(2)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range fams {
		m := f.GetMetric()[0]
		val := m.GetCounter().GetValue() + m.GetGauge().GetValue()
		label := ""
		for _, l := range m.GetLabel() {
			label += l.GetName() + "=" + l.GetValue()
		}
		got[f.GetName()] = fmt.Sprintf("%s|%s|%g", f.GetHelp(), label, val)
	}
	want := map[string]string{"x_total": "x help||1", "y_total": "y help|kind=a|2", "z": "z help||7"}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: %q, want %q", name, got[name], w)
		}
	}
	err = Register(reg, "second", Counter("x_total", "x help"))
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) || !strings.Contains(err.Error(), "register second metrics") {
		t.Fatalf("registering a name twice: %v, want an AlreadyRegisteredError naming the part", err)
	}
}
