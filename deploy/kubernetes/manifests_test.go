package kubernetes

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// manifests are every object of every YAML file here and in optional/.
type manifests struct {
	services     map[string]*corev1.Service
	statefulSets []*appsv1.StatefulSet
	pdbs         []*policyv1.PodDisruptionBudget
	secrets      map[string]*corev1.Secret
	monitors     []*monitoringv1.ServiceMonitor
	count        int
}

// decodeStrict decodes one YAML document into the API type its apiVersion
// and kind name. Unknown fields, duplicate keys and unknown kinds fail.
func (m *manifests) decodeStrict(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	// As the API server decodes: duplicate keys, unknown fields and fields
	// in the wrong case fail (encoding/json, which sigs.k8s.io/yaml's own
	// UnmarshalStrict uses, matches field names case-insensitively and so
	// would take "clusterIp" for "clusterIP").
	strict := func(into any) error {
		j, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			return err
		}
		strictErrs, err := kjson.UnmarshalStrict(j, into, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
		if err != nil {
			return err
		}
		return errors.Join(strictErrs...)
	}
	var err error
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 Service":
		var s corev1.Service
		if err = strict(&s); err == nil {
			m.services[s.Name] = &s
		}
	case "v1 Secret":
		var s corev1.Secret
		if err = strict(&s); err == nil {
			m.secrets[s.Name] = &s
		}
	case "apps/v1 StatefulSet":
		var s appsv1.StatefulSet
		if err = strict(&s); err == nil {
			m.statefulSets = append(m.statefulSets, &s)
		}
	case "policy/v1 PodDisruptionBudget":
		var p policyv1.PodDisruptionBudget
		if err = strict(&p); err == nil {
			m.pdbs = append(m.pdbs, &p)
		}
	case "monitoring.coreos.com/v1 ServiceMonitor":
		var s monitoringv1.ServiceMonitor
		if err = strict(&s); err == nil {
			m.monitors = append(m.monitors, &s)
		}
	default:
		return fmt.Errorf("unexpected apiVersion %q kind %q", tm.APIVersion, tm.Kind)
	}
	m.count++
	return err
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// onlyComments reports whether a YAML document holds nothing but comments
// and blank lines.
func onlyComments(doc []byte) bool {
	for _, l := range strings.Split(string(doc), "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			return false
		}
	}
	return true
}

func load(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{services: map[string]*corev1.Service{}, secrets: map[string]*corev1.Secret{}}
	var files []string
	for _, pat := range []string{"*.yaml", "optional/*.yaml"} {
		fs, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, fs...)
	}
	if len(files) < 3 {
		t.Fatalf("found only %q", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range docSeparator.Split(string(b), -1) {
			if onlyComments([]byte(doc)) {
				continue
			}
			if err := m.decodeStrict([]byte(doc)); err != nil {
				t.Errorf("%s, document %d: %v", f, i+1, err)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return m
}

// The strict decoding is what catches a misspelt field: prove it does.
func TestStrictDecodingCatchesTypos(t *testing.T) {
	m := &manifests{services: map[string]*corev1.Service{}, secrets: map[string]*corev1.Secret{}}
	for _, doc := range []string{
		"apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {clusterIp: None}\n",
		"apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {clusterIP: None, selectr: {}}\n",
		"apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: x}\nspec: {template: {spec: {containers: [{name: c, readinesProbe: {}}]}}}\n",
		"apiVersion: v1\nkind: Service\nmetadata: {name: x}\nmetadata: {name: y}\n",
		"apiVersion: v1\nkind: Servce\nmetadata: {name: x}\n",
		"apiVersion: policy/v1\nkind: PodDisruptionBudget\nspec: {maxUnavailable: [1]}\n",
	} {
		if err := m.decodeStrict([]byte(doc)); err == nil {
			t.Errorf("accepted %q", doc)
		}
	}
}

// agentEnv lists the environment variables the agent reads, from the
// flags `quorumkv agent -h` prints (QUORUMKV_ + upper-cased flag name with
// - as _), built from this repository's source.
func agentEnv(t *testing.T) map[string]bool {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "quorumkv")
	// -pgo=off: only its flags are read, so the build skips compiling
	// every package again with cmd/quorumkv/default.pgo.
	build := exec.Command("go", "build", "-pgo=off", "-o", bin, "./cmd/quorumkv")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build quorumkv: %v\n%s", err, out)
	}
	var out bytes.Buffer
	help := exec.Command(bin, "agent", "-h")
	help.Stdout, help.Stderr = &out, &out
	if err := help.Run(); err != nil {
		t.Fatalf("quorumkv agent -h: %v\n%s", err, out.String())
	}
	env := map[string]bool{}
	for _, f := range regexp.MustCompile(`(?m)^\s+-([a-z][a-z0-9-]*)`).FindAllStringSubmatch(out.String(), -1) {
		env["QUORUMKV_"+strings.ToUpper(strings.ReplaceAll(f[1], "-", "_"))] = true
	}
	for _, must := range []string{"QUORUMKV_NODE_ID", "QUORUMKV_ADVERTISE", "QUORUMKV_JOIN", "QUORUMKV_SECRET", "QUORUMKV_CONFIG"} {
		if !env[must] {
			t.Fatalf("agent -h lists no %s; parsed %v from:\n%s", must, env, out.String())
		}
	}
	return env
}

// imageUID is the quorumkv user's uid in the image (deploy/image/passwd).
func imageUID(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "image", "passwd"))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(strings.TrimSpace(string(b)), ":")
	uid, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || f[0] != "quorumkv" {
		t.Fatalf("image passwd %q: %v", b, err)
	}
	return uid
}

func selects(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false // an empty selector selects everything: never what we mean
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func labelSelects(t reporter, what string, sel *metav1.LabelSelector, labels map[string]string) {
	t.Helper()
	if sel == nil || len(sel.MatchExpressions) != 0 || !selects(sel.MatchLabels, labels) {
		t.Errorf("%s: selector %+v does not select the pods (labels %v)", what, sel, labels)
	}
}

func protocol(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// containerPort finds the port a Service's targetPort names.
func containerPort(c *corev1.Container, target intstr.IntOrString, proto corev1.Protocol) (corev1.ContainerPort, bool) {
	for _, p := range c.Ports {
		if protocol(p.Protocol) != protocol(proto) {
			continue
		}
		if (target.Type == intstr.String && p.Name == target.StrVal) || (target.Type == intstr.Int && p.ContainerPort == target.IntVal) {
			return p, true
		}
	}
	return corev1.ContainerPort{}, false
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expand substitutes $(VAR) references as Kubernetes does, from the
// variables defined earlier in the list; downward API fields get example
// values. It reports references to variables not defined before.
func expand(t reporter, env []corev1.EnvVar) map[string]string {
	t.Helper()
	sample := map[string]string{"metadata.name": "quorumkv-0", "metadata.namespace": "default", "status.podIP": "10.0.0.7"}
	vals := map[string]string{}
	for _, e := range env {
		if _, dup := vals[e.Name]; dup {
			t.Errorf("env %s given twice", e.Name)
		}
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			vals[e.Name] = sample[e.ValueFrom.FieldRef.FieldPath]
		case e.ValueFrom != nil:
			vals[e.Name] = "<" + e.Name + ">"
		default:
			v := e.Value
			for _, r := range varRef.FindAllStringSubmatch(v, -1) {
				got, ok := vals[r[1]]
				if !ok {
					t.Errorf("env %s refers to $(%s), which is not defined before it (Kubernetes would pass it literally)", e.Name, r[1])
				}
				v = strings.ReplaceAll(v, r[0], got)
			}
			vals[e.Name] = v
		}
	}
	return vals
}

func TestManifests(t *testing.T) {
	m := load(t)
	settings := agentEnv(t)
	check(t, m, settings, imageUID(t))
}

// reporter is the part of testing.T that check uses, so a test can run it
// on broken manifests and see it complain.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// check cross-checks the objects: it reports every disagreement.
func check(t reporter, m *manifests, settings map[string]bool, uid int64) {
	t.Helper()
	if len(m.statefulSets) != 1 || len(m.pdbs) != 1 || len(m.monitors) != 1 {
		t.Errorf("want one StatefulSet, one PodDisruptionBudget and one ServiceMonitor, got %d, %d, %d", len(m.statefulSets), len(m.pdbs), len(m.monitors))
		return
	}
	ss := m.statefulSets[0]
	pod := ss.Spec.Template
	labels := pod.Labels
	labelSelects(t, "StatefulSet", ss.Spec.Selector, labels)
	if ss.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("podManagementPolicy %q: pods are ready only once joined, so they must start in parallel", ss.Spec.PodManagementPolicy)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Errorf("want one container, got %d", len(pod.Spec.Containers))
		return
	}
	c := &pod.Spec.Containers[0]
	if !slices.Equal(c.Args, []string{"agent"}) || len(c.Command) != 0 {
		t.Errorf("container runs %q %q, want the image's entrypoint with args [agent]", c.Command, c.Args)
	}

	// Services: the headless one is the StatefulSet's and publishes pods
	// before they are ready; both select the pods; every targetPort is a
	// container port with the same protocol.
	peers := m.services[ss.Spec.ServiceName]
	if peers == nil {
		t.Errorf("StatefulSet serviceName %q: no such Service", ss.Spec.ServiceName)
		return
	}
	if peers.Spec.ClusterIP != corev1.ClusterIPNone || !peers.Spec.PublishNotReadyAddresses {
		t.Errorf("peer Service %s: clusterIP %q publishNotReadyAddresses %v, want None and true", peers.Name, peers.Spec.ClusterIP, peers.Spec.PublishNotReadyAddresses)
	}
	var client *corev1.Service
	for name, s := range m.services {
		if !selects(s.Spec.Selector, labels) {
			t.Errorf("Service %s: selector %v does not select the pods (labels %v)", name, s.Spec.Selector, labels)
		}
		for _, p := range s.Spec.Ports {
			cp, ok := containerPort(c, p.TargetPort, p.Protocol)
			if !ok {
				t.Errorf("Service %s port %s: targetPort %s/%s is no container port", name, p.Name, p.TargetPort.String(), protocol(p.Protocol))
			} else if cp.ContainerPort != p.Port {
				t.Errorf("Service %s port %s: port %d maps to container port %d; keep them equal so advertised addresses work through the Service", name, p.Name, p.Port, cp.ContainerPort)
			}
		}
		if s != peers {
			client = s
		}
	}
	if len(m.services) != 2 || client == nil {
		t.Errorf("want a peer and a client Service, got %d", len(m.services))
		return
	}
	servicePorts := func(s *corev1.Service) map[string]bool {
		out := map[string]bool{}
		for _, p := range s.Spec.Ports {
			out[p.Name] = true
		}
		return out
	}
	for _, want := range []string{"rpc", "gossip", "gossip-udp"} {
		if !servicePorts(peers)[want] {
			t.Errorf("peer Service lacks port %s", want)
		}
	}
	for _, want := range []string{"http", "resp"} {
		if !servicePorts(client)[want] {
			t.Errorf("client Service lacks port %s", want)
		}
	}

	// Environment: only settings the agent reads, references defined
	// before use, listen ports equal to the named container ports.
	env := expand(t, c.Env)
	for name := range env {
		if strings.HasPrefix(name, "QUORUMKV_") && !settings[name] {
			t.Errorf("env %s: the agent reads no such setting", name)
		}
	}
	for _, a := range c.Args {
		for _, r := range varRef.FindAllStringSubmatch(a, -1) {
			if _, ok := env[r[1]]; !ok {
				t.Errorf("arg %q refers to undefined $(%s)", a, r[1])
			}
		}
	}
	for setting, ports := range map[string][]string{
		"QUORUMKV_HTTP": {"http"}, "QUORUMKV_RESP": {"resp"}, "QUORUMKV_RPC": {"rpc"}, "QUORUMKV_GOSSIP": {"gossip", "gossip-udp"},
	} {
		_, port, err := net.SplitHostPort(env[setting])
		if err != nil {
			t.Errorf("env %s = %q: %v", setting, env[setting], err)
			continue
		}
		for _, name := range ports {
			cp, ok := containerPort(c, intstr.FromString(name), "")
			if name == "gossip-udp" {
				cp, ok = containerPort(c, intstr.FromString(name), corev1.ProtocolUDP)
			}
			if !ok || strconv.Itoa(int(cp.ContainerPort)) != port {
				t.Errorf("env %s listens on port %s; container port %s is %d", setting, port, name, cp.ContainerPort)
			}
		}
	}
	adv := env["QUORUMKV_ADVERTISE"]
	if adv == "" || net.ParseIP(adv) == nil || net.ParseIP(adv).IsUnspecified() {
		t.Errorf("QUORUMKV_ADVERTISE expands to %q, want the pod IP (the listeners bind 0.0.0.0)", adv)
	}
	if env["QUORUMKV_NODE_ID"] != "quorumkv-0" {
		t.Errorf("QUORUMKV_NODE_ID expands to %q, want the pod name", env["QUORUMKV_NODE_ID"])
	}
	joinHost, joinPort, err := net.SplitHostPort(env["QUORUMKV_JOIN"])
	if err != nil || !strings.HasPrefix(joinHost, peers.Name+".default.svc.") || joinPort != "7947" {
		t.Errorf("QUORUMKV_JOIN expands to %q, want the peer Service's DNS name and the gossip port", env["QUORUMKV_JOIN"])
	}
	var zone *corev1.EnvVar
	for i := range c.Env {
		if e := &c.Env[i]; e.Name == "QUORUMKV_SECRET" {
			ref := e.ValueFrom
			if ref == nil || ref.SecretKeyRef == nil {
				t.Errorf("QUORUMKV_SECRET must come from a Secret")
				continue
			}
			s := m.secrets[ref.SecretKeyRef.Name]
			if s == nil {
				t.Errorf("QUORUMKV_SECRET refers to Secret %q, which no manifest (optional/secret.example.yaml) shows", ref.SecretKeyRef.Name)
			} else if _, ok := s.StringData[ref.SecretKeyRef.Key]; !ok {
				t.Errorf("QUORUMKV_SECRET refers to key %q, which Secret %s lacks", ref.SecretKeyRef.Key, s.Name)
			}
		} else if e.Name == "TOPOLOGY_ZONE" {
			zone = e
		}
	}
	if zone == nil || zone.ValueFrom == nil || zone.ValueFrom.FieldRef == nil ||
		zone.ValueFrom.FieldRef.FieldPath != "metadata.labels['topology.kubernetes.io/zone']" {
		t.Errorf("TOPOLOGY_ZONE (the hook for --zone) must come from the pod's topology.kubernetes.io/zone label, got %+v", zone)
	}

	// Probes on the named HTTP port: readiness /readyz, liveness and
	// startup /healthz.
	for _, p := range []struct {
		what  string
		probe *corev1.Probe
		path  string
	}{{"readiness", c.ReadinessProbe, "/readyz"}, {"liveness", c.LivenessProbe, "/healthz"}, {"startup", c.StartupProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s probe: want an HTTP GET of %s", p.what, p.path)
			continue
		}
		g := p.probe.HTTPGet
		cp, ok := containerPort(c, g.Port, "")
		if g.Path != p.path || !ok || cp.Name != "http" {
			t.Errorf("%s probe: GET %s on port %s, want %s on the http port", p.what, g.Path, g.Port.String(), p.path)
		}
	}

	// Storage: one claim per pod, mounted at the data directory; every
	// mount has a volume.
	claims := map[string]bool{}
	for _, pvc := range ss.Spec.VolumeClaimTemplates {
		claims[pvc.Name] = true
		if !slices.Contains(pvc.Spec.AccessModes, corev1.ReadWriteOnce) || pvc.Spec.Resources.Requests.Storage().IsZero() {
			t.Errorf("volume claim %s: want ReadWriteOnce with a storage request", pvc.Name)
		}
	}
	for _, v := range pod.Spec.Volumes {
		claims[v.Name] = true
	}
	dataMounted := false
	for _, vm := range c.VolumeMounts {
		if !claims[vm.Name] {
			t.Errorf("volume mount %s: no such volume or claim", vm.Name)
		}
		dataMounted = dataMounted || (vm.MountPath == env["QUORUMKV_DATA_DIR"] && claims[vm.Name])
	}
	if !dataMounted || len(ss.Spec.VolumeClaimTemplates) != 1 {
		t.Errorf("the data directory %q must be a mounted volume claim (one per pod)", env["QUORUMKV_DATA_DIR"])
	}

	// Placement and disruptions.
	aa := pod.Spec.Affinity
	if aa == nil || aa.PodAntiAffinity == nil || len(aa.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) == 0 {
		t.Errorf("want a required pod anti-affinity")
	} else {
		for _, term := range aa.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			labelSelects(t, "pod anti-affinity", term.LabelSelector, labels)
			if term.TopologyKey != "kubernetes.io/hostname" {
				t.Errorf("pod anti-affinity topology key %q, want kubernetes.io/hostname", term.TopologyKey)
			}
		}
	}
	pdb := m.pdbs[0]
	labelSelects(t, "PodDisruptionBudget", pdb.Spec.Selector, labels)
	if mu := pdb.Spec.MaxUnavailable; mu == nil || *mu != intstr.FromInt32(1) || pdb.Spec.MinAvailable != nil {
		t.Errorf("PodDisruptionBudget: maxUnavailable %v minAvailable %v, want maxUnavailable 1 only", mu, pdb.Spec.MinAvailable)
	}

	// The image's user, non-root.
	sc := pod.Spec.SecurityContext
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != uid || sc.FSGroup == nil || *sc.FSGroup != uid || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("pod securityContext %+v: want runAsUser and fsGroup %d (the image's quorumkv user), runAsNonRoot", sc, uid)
	}

	// The ServiceMonitor scrapes /metrics on a port of the client Service.
	sm := m.monitors[0]
	if !selects(sm.Spec.Selector.MatchLabels, client.Labels) || selects(sm.Spec.Selector.MatchLabels, peers.Labels) {
		t.Errorf("ServiceMonitor selects %v; want the client Service only (labels %v), or each pod is scraped twice", sm.Spec.Selector.MatchLabels, client.Labels)
	}
	for _, ep := range sm.Spec.Endpoints {
		if !servicePorts(client)[ep.Port] || ep.Path != "/metrics" {
			t.Errorf("ServiceMonitor endpoint port %q path %q: want a client Service port and /metrics", ep.Port, ep.Path)
		}
	}
}

// recorder collects what check reports.
type recorder struct{ errs []string }

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// Each cross-check can fail: broken copies of the manifests are reported.
func TestCheckCatchesBreakage(t *testing.T) {
	settings := agentEnv(t)
	uid := imageUID(t)
	container := func(m *manifests) *corev1.Container { return &m.statefulSets[0].Spec.Template.Spec.Containers[0] }
	env := func(m *manifests, name string) *corev1.EnvVar {
		for i, e := range container(m).Env {
			if e.Name == name {
				return &container(m).Env[i]
			}
		}
		t.Fatalf("no env %s", name)
		return nil
	}
	for _, tc := range []struct {
		name   string
		mutate func(m *manifests)
		want   string
	}{
		{"readiness path", func(m *manifests) { container(m).ReadinessProbe.HTTPGet.Path = "/ready" }, "readiness probe"},
		{"liveness port", func(m *manifests) { container(m).LivenessProbe.HTTPGet.Port = intstr.FromString("resp") }, "liveness probe"},
		{"unknown setting", func(m *manifests) { env(m, "QUORUMKV_ADVERTISE").Name = "QUORUMKV_ADVERTIZE" }, "the agent reads no such setting"},
		{"listen port", func(m *manifests) { env(m, "QUORUMKV_HTTP").Value = "0.0.0.0:8081" }, "listens on port 8081"},
		{"reference before definition", func(m *manifests) {
			e := container(m).Env
			container(m).Env = append([]corev1.EnvVar{*env(m, "QUORUMKV_NODE_ID")}, e...)
		}, "not defined before it"},
		{"advertise a wildcard", func(m *manifests) { env(m, "QUORUMKV_ADVERTISE").Value = "0.0.0.0" }, "QUORUMKV_ADVERTISE expands"},
		{"join another service", func(m *manifests) { env(m, "QUORUMKV_JOIN").Value = "quorumkv.$(POD_NAMESPACE).svc:7947" }, "QUORUMKV_JOIN expands"},
		{"secret key", func(m *manifests) { env(m, "QUORUMKV_SECRET").ValueFrom.SecretKeyRef.Key = "token" }, "lacks"},
		{"ready addresses only", func(m *manifests) { m.services["quorumkv-peers"].Spec.PublishNotReadyAddresses = false }, "publishNotReadyAddresses"},
		{"target port", func(m *manifests) { m.services["quorumkv"].Spec.Ports[0].TargetPort = intstr.FromString("htp") }, "is no container port"},
		{"service selector", func(m *manifests) { m.services["quorumkv"].Spec.Selector = map[string]string{"app": "other"} }, "does not select the pods"},
		{"pdb", func(m *manifests) { two := intstr.FromInt32(2); m.pdbs[0].Spec.MaxUnavailable = &two }, "maxUnavailable 1"},
		{"mount", func(m *manifests) { container(m).VolumeMounts[0].Name = "dat" }, "no such volume"},
		{"data dir", func(m *manifests) { env(m, "QUORUMKV_DATA_DIR").Value = "/var/lib/quorumkv" }, "must be a mounted volume claim"},
		{"anti-affinity", func(m *manifests) {
			m.statefulSets[0].Spec.Template.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0].TopologyKey = "topology.kubernetes.io/zone"
		}, "topology key"},
		{"uid", func(m *manifests) {
			root := int64(0)
			m.statefulSets[0].Spec.Template.Spec.SecurityContext.RunAsUser = &root
		}, "runAsUser"},
		{"zone hook", func(m *manifests) { env(m, "TOPOLOGY_ZONE").ValueFrom.FieldRef.FieldPath = "spec.nodeName" }, "TOPOLOGY_ZONE"},
		{"monitor port", func(m *manifests) { m.monitors[0].Spec.Endpoints[0].Port = "metrics" }, "ServiceMonitor endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := load(t)
			tc.mutate(m)
			var r recorder
			check(&r, m, settings, uid)
			if !slices.ContainsFunc(r.errs, func(e string) bool { return strings.Contains(e, tc.want) }) {
				t.Errorf("no complaint with %q; got %q", tc.want, r.errs)
			}
		})
	}
	var r recorder
	check(&r, load(t), settings, uid)
	if len(r.errs) != 0 {
		t.Errorf("unbroken manifests: %q", r.errs)
	}
}
