package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Settings are what the lab changes in antrea.yml before applying it.
type Settings struct {
	// Agent and Controller are keys of antrea-agent.conf and
	// antrea-controller.conf; they win over the manifest's and the lab's.
	Agent      map[string]any `json:"agent,omitempty"`
	Controller map[string]any `json:"controller,omitempty"`
}

// AgentOffLabel on a node keeps the agent's DaemonSet off it (value "off"):
// the lab adds the matching node affinity to the DaemonSet, so that an
// agent can be stopped on one node the way an operator would.
const AgentOffLabel = "antrea-lab.io/agent"

// configMapPrefix names the manifest's configuration ConfigMap (the rest
// of its name is a hash of its content).
const configMapPrefix = "antrea-config"

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// RenderManifest returns src (antrea.yml) with the lab's configuration:
// agentConf and controllerConf keys set in the ConfigMap (renamed after its
// new content, so that a change rolls the agents like a new manifest
// would), and the node affinity of AgentOffLabel on the DaemonSet.
func RenderManifest(src []byte, agentConf, controllerConf map[string]any) ([]byte, error) {
	var objs []map[string]any
	for i, doc := range docSeparator.Split(string(src), -1) {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			return nil, fmt.Errorf("manifest document %d: %w", i, err)
		}
		if len(obj) > 0 {
			objs = append(objs, obj)
		}
	}
	var cm map[string]any
	for _, o := range objs {
		if o["kind"] == "ConfigMap" && strings.HasPrefix(str(o, "metadata", "name"), configMapPrefix) {
			cm = o
		}
	}
	if cm == nil {
		return nil, fmt.Errorf("manifest has no ConfigMap %s-*", configMapPrefix)
	}
	data, _ := cm["data"].(map[string]any)
	for file, keys := range map[string]map[string]any{"antrea-agent.conf": agentConf, "antrea-controller.conf": controllerConf} {
		text, ok := data[file].(string)
		if !ok {
			return nil, fmt.Errorf("ConfigMap %s has no %s", str(cm, "metadata", "name"), file)
		}
		out, err := setKeys(text, keys)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		data[file] = out
	}
	oldName := str(cm, "metadata", "name")
	sum, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(sum)
	newName := configMapPrefix + "-" + hex.EncodeToString(h[:])[:10]
	cm["metadata"].(map[string]any)["name"] = newName

	var ds map[string]any
	for _, o := range objs {
		if o["kind"] != "DaemonSet" && o["kind"] != "Deployment" {
			continue
		}
		if o["kind"] == "DaemonSet" {
			ds = o
		}
		podSpec, _ := lookup(o, "spec", "template", "spec").(map[string]any)
		vols, _ := podSpec["volumes"].([]any)
		for _, v := range vols {
			if ref, ok := lookup(v, "configMap").(map[string]any); ok && ref["name"] == oldName {
				ref["name"] = newName
			}
		}
	}
	if ds == nil {
		return nil, fmt.Errorf("manifest has no DaemonSet")
	}
	podSpec := lookup(ds, "spec", "template", "spec").(map[string]any)
	podSpec["affinity"] = map[string]any{"nodeAffinity": map[string]any{
		"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{
			"nodeSelectorTerms": []any{map[string]any{"matchExpressions": []any{map[string]any{
				"key": AgentOffLabel, "operator": "NotIn", "values": []any{"off"},
			}}}},
		},
	}}

	var b strings.Builder
	b.WriteString("# antrea.yml as the lab applies it: its configuration keys and the node\n# affinity of " + AgentOffLabel + "=off set by antrea-lab.\n")
	for _, o := range objs {
		out, err := yaml.Marshal(o)
		if err != nil {
			return nil, err
		}
		b.WriteString("---\n")
		b.Write(out)
	}
	return []byte(b.String()), nil
}

// setKeys sets keys in the YAML configuration text (dropping its comments
// and the keys left empty).
func setKeys(text string, keys map[string]any) (string, error) {
	conf := map[string]any{}
	if err := yaml.Unmarshal([]byte(text), &conf); err != nil {
		return "", err
	}
	for k, v := range conf {
		if v == nil {
			delete(conf, k)
		}
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if keys[k] == nil {
			delete(conf, k)
		} else {
			conf[k] = keys[k]
		}
	}
	out, err := yaml.Marshal(conf)
	if err != nil {
		return "", err
	}
	return "# Set by antrea-lab; the manifest's file documents every key.\n" + string(out), nil
}

func lookup(o any, path ...string) any {
	for _, p := range path {
		m, ok := o.(map[string]any)
		if !ok {
			return nil
		}
		o = m[p]
	}
	return o
}

func str(o any, path ...string) string {
	s, _ := lookup(o, path...).(string)
	return s
}
