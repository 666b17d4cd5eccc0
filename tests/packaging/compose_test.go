// Package packaging checks that the deployment files agree with each other
// and with the bridge: docker-compose.yml, deploy/compose/bridge.yaml, the
// Dockerfile, the Kubernetes manifests, the alert rules and the dashboard.
// It needs no Docker: the files are parsed, not run.
package packaging

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/wps-bridge/bridge/internal/config"
	"github.com/wps-bridge/bridge/internal/wps"
)

const repo = "../.."

func readRepoFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// compose is the part of the Compose specification these checks read.
type compose struct {
	Services map[string]service `yaml:"services"`
}

type service struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Expose      []string          `yaml:"expose"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   yaml.Node         `yaml:"depends_on"`
}

// containerPorts returns the container side of ports ("29092:29092",
// "127.0.0.1:80:8080/tcp" -> 8080) and expose.
func (s service) containerPorts() []string {
	var out []string
	for _, p := range s.Ports {
		p, _, _ = strings.Cut(p, "/")
		out = append(out, p[strings.LastIndex(p, ":")+1:])
	}
	return append(out, s.Expose...)
}

// flag returns the value of --name in the service's command.
func (s service) flag(name string) (string, bool) {
	for i, arg := range s.Command {
		if arg == name && i+1 < len(s.Command) {
			return s.Command[i+1], true
		}
		if v, ok := strings.CutPrefix(arg, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func (s service) dependsOn() []string {
	var out []string
	switch s.DependsOn.Kind {
	case yaml.SequenceNode:
		for _, n := range s.DependsOn.Content {
			out = append(out, n.Value)
		}
	case yaml.MappingNode:
		for i := 0; i < len(s.DependsOn.Content); i += 2 {
			out = append(out, s.DependsOn.Content[i].Value)
		}
	}
	return out
}

func loadCompose(t *testing.T) compose {
	t.Helper()
	var c compose
	dec := yaml.NewDecoder(bytes.NewReader(readRepoFile(t, "docker-compose.yml")))
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

func envLookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

// endpoint is one host:port the bridge config makes the bridge connect to.
type endpoint struct{ what, host, port string }

// endpointsOf lists every network address in cfg.
func endpointsOf(t *testing.T, cfg *config.Config) []endpoint {
	t.Helper()
	var out []endpoint
	natsURLs := func(what, list string) {
		for u := range strings.SplitSeq(list, ",") {
			parsed, err := url.Parse(strings.TrimSpace(u))
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			port := parsed.Port()
			if port == "" {
				port = "4222"
			}
			out = append(out, endpoint{what, parsed.Hostname(), port})
		}
	}
	brokers := func(what string, list []string) {
		for _, b := range list {
			host, port, err := net.SplitHostPort(b)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			out = append(out, endpoint{what, host, port})
		}
	}
	for i, s := range cfg.Sources {
		what := fmt.Sprintf("sources[%d] (%s)", i, s.Name)
		switch s.Type {
		case config.BrokerKafka:
			brokers(what, s.Brokers)
		default:
			natsURLs(what, s.URL)
		}
	}
	switch cfg.DeadLetter.Type {
	case config.BrokerKafka:
		brokers("deadLetter", cfg.DeadLetter.Brokers)
	case config.BrokerNATS, config.BrokerJetStream:
		natsURLs("deadLetter", cfg.DeadLetter.URL)
	}
	cs, err := wps.ParseConnectionString(cfg.WebPubSub.ConnectionString)
	if err != nil {
		t.Fatalf("webpubsub.connectionString: %v", err)
	}
	u, err := url.Parse(cs.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return append(out, endpoint{"webpubsub endpoint", u.Hostname(), port})
}

// TestComposeWiring parses deploy/compose/bridge.yaml with the environment
// of the compose bridge service and checks that every address it names is a
// compose service that exposes that port.
func TestComposeWiring(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	bridge, ok := c.Services["bridge"]
	if !ok {
		t.Fatal("docker-compose.yml has no bridge service")
	}

	// The command reads the mounted config.
	cfgPath, ok := bridge.flag("-c")
	if !ok || bridge.Command[0] != "run" {
		t.Fatalf("bridge command = %q, want run -c <file>", bridge.Command)
	}
	var mounted string
	for _, v := range bridge.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == cfgPath {
			mounted = parts[0]
		}
	}
	if mounted == "" {
		t.Fatalf("no volume mounts %s into the bridge (volumes %q)", cfgPath, bridge.Volumes)
	}
	data := readRepoFile(t, mounted)
	cfg, err := config.Parse(data, envLookup(bridge.Environment))
	if err != nil {
		t.Fatalf("%s with the bridge service's environment:\n%v", mounted, err)
	}
	types := map[config.BrokerType]bool{}
	for _, s := range cfg.Sources {
		types[s.Type] = true
	}
	if !types[config.BrokerJetStream] || !types[config.BrokerKafka] {
		t.Errorf("%s should use both a jetstream and a kafka source, has %v", mounted, types)
	}

	deps := bridge.dependsOn()
	for _, ep := range endpointsOf(t, cfg) {
		svc, ok := c.Services[ep.host]
		if !ok {
			t.Errorf("%s names host %q: no such compose service", ep.what, ep.host)
			continue
		}
		if !slices.Contains(svc.containerPorts(), ep.port) {
			t.Errorf("%s names %s:%s but service %s exposes %v", ep.what, ep.host, ep.port, ep.host, svc.containerPorts())
		}
		if listen, ok := svc.flag("--listen"); ok {
			if _, port, _ := net.SplitHostPort(listen); port != ep.port {
				t.Errorf("service %s listens on %s, the bridge calls port %s", ep.host, listen, ep.port)
			}
			if host, _, _ := net.SplitHostPort(listen); host != "0.0.0.0" && host != "" {
				t.Errorf("service %s listens on %s: not reachable from other containers", ep.host, listen)
			}
		}
		if !slices.Contains(deps, ep.host) && !slices.ContainsFunc(deps, func(d string) bool {
			return slices.Contains(c.Services[d].dependsOn(), ep.host)
		}) {
			t.Errorf("bridge does not depend on %s (directly or through a dependency)", ep.host)
		}
		if svc.Image == "apache/kafka" || strings.HasPrefix(svc.Image, "apache/kafka:") {
			// Kafka clients reconnect to the advertised address, not the seed.
			if adv := svc.Environment["KAFKA_ADVERTISED_LISTENERS"]; !strings.Contains(adv, "//"+ep.host+":"+ep.port) {
				t.Errorf("kafka advertises %q, the bridge connects to %s:%s", adv, ep.host, ep.port)
			}
		}
	}

	// The metrics port is published and served on all interfaces.
	host, port, _ := net.SplitHostPort(cfg.HTTP.Listen)
	if host != "0.0.0.0" && host != "" {
		t.Errorf("http.listen = %s: /metrics is not reachable from outside the container", cfg.HTTP.Listen)
	}
	if !slices.Contains(bridge.containerPorts(), port) {
		t.Errorf("bridge service does not publish the metrics port %s", port)
	}
}

func TestComposeKafkaIsKRaft(t *testing.T) {
	t.Parallel()
	kafka, ok := loadCompose(t).Services["kafka"]
	if !ok || !strings.HasPrefix(kafka.Image, "apache/kafka:") {
		t.Fatalf("kafka service must use the official apache/kafka image, got %+v", kafka)
	}
	for _, key := range []string{"KAFKA_NODE_ID", "KAFKA_PROCESS_ROLES", "KAFKA_LISTENERS", "KAFKA_ADVERTISED_LISTENERS",
		"KAFKA_CONTROLLER_LISTENER_NAMES", "KAFKA_CONTROLLER_QUORUM_VOTERS", "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"} {
		if kafka.Environment[key] == "" {
			t.Errorf("kafka: %s is not set", key)
		}
	}
	if roles := kafka.Environment["KAFKA_PROCESS_ROLES"]; !strings.Contains(roles, "broker") || !strings.Contains(roles, "controller") {
		t.Errorf("KAFKA_PROCESS_ROLES = %q, want broker,controller (single-node KRaft)", roles)
	}
}

func TestComposeNATSHasJetStream(t *testing.T) {
	t.Parallel()
	nats, ok := loadCompose(t).Services["nats"]
	if !ok || !slices.Contains(nats.Command, "-js") {
		t.Errorf("nats service must run with -js, got %+v", nats)
	}
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	df := string(readRepoFile(t, "Dockerfile"))
	stages := regexp.MustCompile(`(?m)^FROM\s`).Split(df, -1)
	if len(stages) < 3 {
		t.Fatalf("want a multi-stage build, got %d stage(s)", len(stages)-1)
	}
	final := stages[len(stages)-1]
	users := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindAllStringSubmatch(final, -1)
	if len(users) == 0 {
		t.Fatal("the final stage sets no USER")
	}
	user := users[len(users)-1][1]
	if name, _, _ := strings.Cut(user, ":"); name == "root" || name == "0" {
		t.Errorf("final stage runs as %s", user)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w`, "./cmd/bridge"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	// The files the build copies are not excluded by .dockerignore.
	ignore := string(readRepoFile(t, ".dockerignore"))
	for _, needed := range []string{"go.mod", "go.sum", "cmd", "internal", "bridge.yaml"} {
		if slices.Contains(strings.Fields(ignore), needed) {
			t.Errorf(".dockerignore excludes %s, which the build needs", needed)
		}
	}
}

// k8sDocs decodes every YAML document of deploy/k8s/*.yaml.
func k8sDocs(t *testing.T) []map[string]any {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repo, "deploy", "k8s", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/k8s: %v", err)
	}
	var docs []map[string]any
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if doc != nil {
				docs = append(docs, doc)
			}
		}
	}
	return docs
}

// k8sObject is the part of a Kubernetes manifest these checks read.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Replicas       int            `yaml:"replicas"`
		MaxUnavailable any            `yaml:"maxUnavailable"`
		Selector       map[string]any `yaml:"selector"`
		Template       struct {
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
				} `yaml:"securityContext"`
				Containers []struct {
					Args []string `yaml:"args"`
					Env  []struct {
						Name      string `yaml:"name"`
						Value     string `yaml:"value"`
						ValueFrom struct {
							SecretKeyRef *struct {
								Name string `yaml:"name"`
								Key  string `yaml:"key"`
							} `yaml:"secretKeyRef"`
						} `yaml:"valueFrom"`
					} `yaml:"env"`
					Ports []struct {
						Name          string `yaml:"name"`
						ContainerPort int    `yaml:"containerPort"`
					} `yaml:"ports"`
					LivenessProbe  *probe `yaml:"livenessProbe"`
					ReadinessProbe *probe `yaml:"readinessProbe"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

func k8sObjects(t *testing.T) map[string]k8sObject {
	t.Helper()
	out := map[string]k8sObject{}
	for _, doc := range k8sDocs(t) {
		b, err := yaml.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		var o k8sObject
		if err := yaml.Unmarshal(b, &o); err != nil {
			t.Fatal(err)
		}
		out[o.Kind] = o
	}
	return out
}

func TestKubernetesManifests(t *testing.T) {
	t.Parallel()
	objs := k8sObjects(t)
	for _, kind := range []string{"Deployment", "ConfigMap", "Service", "PodDisruptionBudget"} {
		if _, ok := objs[kind]; !ok {
			t.Errorf("deploy/k8s has no %s", kind)
		}
	}
	dep := objs["Deployment"]
	if dep.Spec.Replicas < 2 {
		t.Errorf("Deployment replicas = %d, want several sharing the consumer group", dep.Spec.Replicas)
	}
	if !dep.Spec.Template.Spec.SecurityContext.RunAsNonRoot {
		t.Errorf("pod securityContext.runAsNonRoot is not set")
	}
	if len(dep.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(dep.Spec.Template.Spec.Containers))
	}
	ctr := dep.Spec.Template.Spec.Containers[0]
	if ctr.LivenessProbe == nil || ctr.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("livenessProbe must GET /healthz, got %+v", ctr.LivenessProbe)
	}
	if ctr.ReadinessProbe == nil || ctr.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readinessProbe must GET /readyz, got %+v", ctr.ReadinessProbe)
	}

	// The probes hit the port the bridge config listens on.
	ports := map[string]int{}
	for _, p := range ctr.Ports {
		ports[p.Name] = p.ContainerPort
	}
	env := map[string]string{}
	var fromSecret []string
	for _, e := range ctr.Env {
		env[e.Name] = e.Value
		if e.ValueFrom.SecretKeyRef != nil {
			fromSecret = append(fromSecret, e.Name)
			env[e.Name] = "Endpoint=https://example.webpubsub.azure.com;AccessKey=placeholder;Version=1.0;"
		}
	}
	if !slices.Contains(fromSecret, "WEBPUBSUB_CONNECTION_STRING") {
		t.Errorf("WEBPUBSUB_CONNECTION_STRING must come from a Secret (secretKeyRef); secret env: %v", fromSecret)
	}
	cfgYAML, ok := objs["ConfigMap"].Data["bridge.yaml"]
	if !ok {
		t.Fatal("the ConfigMap has no bridge.yaml")
	}
	cfg, err := config.Parse([]byte(cfgYAML), envLookup(env))
	if err != nil {
		t.Fatalf("ConfigMap bridge.yaml with the Deployment's env:\n%v", err)
	}
	host, port, _ := net.SplitHostPort(cfg.HTTP.Listen)
	if host != "0.0.0.0" && host != "" {
		t.Errorf("http.listen = %s: probes cannot reach it", cfg.HTTP.Listen)
	}
	for name, pr := range map[string]*probe{"liveness": ctr.LivenessProbe, "readiness": ctr.ReadinessProbe} {
		if pr == nil {
			continue
		}
		p := fmt.Sprint(pr.HTTPGet.Port)
		if named, ok := ports[p]; ok {
			p = fmt.Sprint(named)
		}
		if p != port {
			t.Errorf("%s probe port %s, bridge listens on %s", name, p, port)
		}
	}
	if cfgPath := slices.Index(ctr.Args, "-c"); cfgPath < 0 || ctr.Args[0] != "run" {
		t.Errorf("container args = %q, want run -c <file>", ctr.Args)
	}
}

// metricNames are the fixed Prometheus names the bridge exports.
var metricNames = map[string]bool{
	"wpsbridge_messages_received_total":      true,
	"wpsbridge_commands_sent_total":          true,
	"wpsbridge_commands_retried_total":       true,
	"wpsbridge_messages_dead_lettered_total": true,
	"wpsbridge_commands_dropped_total":       true,
	"wpsbridge_messages_acked_total":         true,
	"wpsbridge_messages_nacked_total":        true,
	"wpsbridge_inflight_requests":            true,
	"wpsbridge_inflight_limit":               true,
	"wpsbridge_lane_queue_depth":             true,
	"wpsbridge_pending_messages":             true,
	"wpsbridge_wps_request_duration_seconds": true,
	"wpsbridge_ready":                        true,
	"wpsbridge_source_lag":                   true,
}

var metricRE = regexp.MustCompile(`wpsbridge_[a-z_]+`)

// metricOf maps a series name to its metric (histogram _bucket/_sum/_count).
func metricOf(series string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(series, suffix); ok && metricNames[base] {
			return base
		}
	}
	return series
}

func checkMetricNames(t *testing.T, where string, exprs []string) map[string]bool {
	t.Helper()
	used := map[string]bool{}
	for _, e := range exprs {
		for _, series := range metricRE.FindAllString(e, -1) {
			m := metricOf(series)
			if !metricNames[m] {
				t.Errorf("%s uses unknown metric %s in %q", where, series, e)
			}
			used[m] = true
		}
	}
	return used
}

func TestAlertRules(t *testing.T) {
	t.Parallel()
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(readRepoFile(t, "deploy/prometheus/alerts.yaml")))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	names := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %q: alert, expr, labels.severity and annotations.summary are required", r.Alert)
			}
			if names[r.Alert] {
				t.Errorf("duplicate alert %s", r.Alert)
			}
			names[r.Alert] = true
			exprs = append(exprs, r.Expr)
		}
	}
	used := checkMetricNames(t, "alerts.yaml", exprs)
	// Lag, dead letters, readiness and the 5xx ratio are covered.
	for _, m := range []string{"wpsbridge_source_lag", "wpsbridge_messages_dead_lettered_total", "wpsbridge_ready", "wpsbridge_commands_sent_total"} {
		if !used[m] {
			t.Errorf("no alert uses %s", m)
		}
	}
	if !slices.ContainsFunc(exprs, func(e string) bool { return strings.Contains(e, `status_class=~"5xx`) && strings.Contains(e, "/") }) {
		t.Errorf("no alert on the 5xx ratio")
	}
}

func TestGrafanaDashboard(t *testing.T) {
	t.Parallel()
	type target struct {
		Expr string `json:"expr"`
	}
	type panel struct {
		Title   string   `json:"title"`
		Type    string   `json:"type"`
		Targets []target `json:"targets"`
		Panels  []panel  `json:"panels"`
	}
	var dash struct {
		UID    string  `json:"uid"`
		Title  string  `json:"title"`
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(readRepoFile(t, "deploy/grafana/wps-bridge.json"), &dash); err != nil {
		t.Fatal(err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Errorf("dashboard needs a uid and a title")
	}
	var exprs []string
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				exprs = append(exprs, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	used := checkMetricNames(t, "wps-bridge.json", exprs)
	for m := range metricNames {
		if !used[m] {
			t.Errorf("the dashboard shows nothing of %s", m)
		}
	}
}
