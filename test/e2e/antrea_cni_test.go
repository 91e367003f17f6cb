package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/ovs-cni/antrea/pkg/lab/netnsutil"
)

// runCNI executes the real antrea-cni binary inside a node's namespace, as
// a container runtime would, and returns its stdout and exit code.
func runCNI(t *testing.T, l *Lab, node, command, containerID, netns, podName string, conf []byte) (string, int) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", l.Layout.NodeNetns(node), filepath.Join(labBinDir, "antrea-cni"))
	cmd.Env = append(os.Environ(),
		"CNI_COMMAND="+command, "CNI_CONTAINERID="+containerID, "CNI_NETNS="+netns, "CNI_IFNAME=eth0",
		"CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=cni-conformance;K8S_POD_NAME="+podName,
		"CNI_PATH="+l.Layout.CNIBinDir(node))
	cmd.Stdin = bytes.NewReader(conf)
	var out bytes.Buffer
	cmd.Stdout = &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run antrea-cni: %v", err)
	}
	return out.String(), code
}

func cniConf(l *Lab, node, version string, prev json.RawMessage) []byte {
	c := map[string]any{"cniVersion": version, "name": "antrea", "type": "antrea",
		"cniSocket": l.Layout.NodePath(node, "/var/run/antrea/cni.sock")}
	if prev != nil {
		c["prevResult"] = prev
	}
	data, _ := json.Marshal(c)
	return data
}

// TestAntreaCNIConformance runs the plugin the way runtimes do, over every
// spec version it claims: ADD gives a result of the requested version with
// an address of the node's podCIDR, CHECK passes, DEL succeeds twice; then
// the bad inputs get the spec's error codes.
func TestAntreaCNIConformance(t *testing.T) {
	l := antreaLab
	node := "node-1"
	for i, v := range []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
		t.Run(v, func(t *testing.T) {
			netns := fmt.Sprintf("%scnitest-%d", l.Layout.NetnsPrefix(), i)
			require.NoError(t, netnsutil.Create(netns))
			t.Cleanup(func() { _ = netnsutil.Delete(netns) })
			id := fmt.Sprintf("conformance%040d", i)
			pod := fmt.Sprintf("pod-%d", i)
			out, code := runCNI(t, l, node, "ADD", id, netnsutil.Path(netns), pod, cniConf(l, node, v, nil))
			require.Equal(t, 0, code, out)
			var res struct {
				CNIVersion string `json:"cniVersion"`
				IPs        []struct {
					Address string `json:"address"`
				} `json:"ips"`
			}
			require.NoError(t, json.Unmarshal([]byte(out), &res), out)
			assert.Equal(t, v, res.CNIVersion)
			require.Len(t, res.IPs, 1)
			assert.True(t, strings.HasPrefix(res.IPs[0].Address, "10.10."), res.IPs[0].Address)

			again, code := runCNI(t, l, node, "ADD", id, netnsutil.Path(netns), pod, cniConf(l, node, v, nil))
			require.Equal(t, 0, code, again)
			assert.JSONEq(t, out, again, "a repeated ADD is answered from state")

			if v != "0.3.1" {
				out, code := runCNI(t, l, node, "CHECK", id, netnsutil.Path(netns), pod, cniConf(l, node, v, json.RawMessage(out)))
				assert.Equal(t, 0, code, out)
			}
			for range 2 {
				out, code := runCNI(t, l, node, "DEL", id, netnsutil.Path(netns), pod, cniConf(l, node, v, nil))
				assert.Equal(t, 0, code, out)
			}
		})
	}

	cases := []struct {
		name     string
		command  string
		netns    string
		conf     []byte
		wantCode int
	}{
		{"malformed config", "ADD", "/var/run/netns/none", []byte("{"), 6},
		{"unknown cniVersion", "ADD", "/var/run/netns/none", cniConf(l, node, "9.9.9", nil), 1},
		{"missing netns on ADD", "ADD", "/var/run/netns/" + l.Layout.NetnsPrefix() + "no-such-netns", cniConf(l, node, "1.0.0", nil), 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, code := runCNI(t, l, node, tc.command, "bad-input", tc.netns, "bad", tc.conf)
			assert.NotEqual(t, 0, code)
			var e struct {
				Code int    `json:"code"`
				Msg  string `json:"msg"`
			}
			require.NoError(t, json.Unmarshal([]byte(out), &e), out)
			assert.Equal(t, tc.wantCode, e.Code, out)
			assert.NotEmpty(t, e.Msg)
		})
	}
	t.Run("DEL of an unknown container", func(t *testing.T) {
		out, code := runCNI(t, l, node, "DEL", "never-added", "", "ghost", cniConf(l, node, "1.0.0", nil))
		assert.Equal(t, 0, code, out)
	})
	assertNoLeaks(t, l)
}

// TestAntreaPodChurn scales a Deployment between 0 and 60 pods three times;
// afterwards every node's ports, veths, addresses, pod flows and the lab's
// pod namespaces match the pods that exist: nothing leaked.
func TestAntreaPodChurn(t *testing.T) {
	l := antreaLab
	const ns = "churn"
	createNamespace(t, l, ns)
	c := ctx(t, 10*time.Minute)
	d := webDeployment(ns, "churn", 0)
	d.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To(int64(0))
	_, err := l.Client.AppsV1().Deployments(ns).Create(c, d, metav1.CreateOptions{})
	require.NoError(t, err)
	scale := func(n int32) {
		// A merge patch: the deployment controller updates the object too.
		patch := []byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, n))
		_, err := l.Client.AppsV1().Deployments(ns).Patch(c, "churn", k8stypes.MergePatchType, patch, metav1.PatchOptions{})
		require.NoError(t, err)
	}
	for round := 1; round <= 3; round++ {
		start := time.Now()
		scale(60)
		waitPods(t, l, ns, "app=churn", 4*time.Minute, allRunningReady(60))
		up := time.Since(start)
		scale(0)
		waitPods(t, l, ns, "app=churn", 4*time.Minute, func(p []corev1.Pod) bool { return len(p) == 0 })
		t.Logf("round %d: 60 pods Ready in %.1fs, all gone after %.1fs", round, up.Seconds(), time.Since(start).Seconds())
	}
	assertNoLeaks(t, l)
}

var ipFile = regexp.MustCompile(`^10\.10\.\d+\.\d+$`)

// assertNoLeaks waits until, on every node, the pod ports, host veths,
// IPAM reservations and pod flows equal the node's pods in the API, and the
// lab's pod namespaces equal the lab's pods.
func assertNoLeaks(t *testing.T, l *Lab) {
	t.Helper()
	var problems []string
	check := func() bool {
		problems = problems[:0]
		list, err := l.Client.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			problems = append(problems, err.Error())
			return false
		}
		perNode := map[string]int{}
		total := 0
		for _, p := range list.Items {
			if !p.Spec.HostNetwork && p.Spec.NodeName != "" {
				perNode[p.Spec.NodeName]++
				total++
			}
		}
		for _, n := range antreaNodes {
			want := perNode[n]
			ports := strings.Fields(l.mustRun(t, "node-exec", n, "--", "ovs-vsctl", "list-ports", "br-int"))
			veths := 0
			for _, line := range strings.Split(l.mustRun(t, "node-exec", n, "--", "ip", "-o", "link", "show", "type", "veth"), "\n") {
				if line != "" && !strings.Contains(line, ": eth0@") { // eth0 is the node's underlay NIC
					veths++
				}
			}
			entries, err := os.ReadDir(l.Layout.NodePath(n, "/var/lib/antrea/ipam/antrea"))
			if err != nil && !os.IsNotExist(err) {
				problems = append(problems, fmt.Sprintf("%s: IPAM store: %v", n, err))
			}
			ips := 0
			for _, e := range entries {
				if ipFile.MatchString(e.Name()) {
					ips++
				}
			}
			podFlows := 0
			for _, m := range regexp.MustCompile(`cookie=0x([0-9a-f]+)`).FindAllStringSubmatch(l.mustRun(t, "node-exec", n, "--", "ovs-ofctl", "-O", "OpenFlow15", "dump-flows", "br-int"), -1) {
				c, _ := strconv.ParseUint(m[1], 16, 64)
				if c>>40&0xff == 2 {
					podFlows++
				}
			}
			for what, got := range map[string]int{"pod ports": len(ports) - 2, "host veths": veths, "IPAM reservations": ips, "pods' flows/6": podFlows / 6} {
				if got != want {
					problems = append(problems, fmt.Sprintf("%s: %d %s for %d pods", n, got, what, want))
				}
			}
		}
		nsList, _ := netnsutil.List(l.Layout.PodNetns(""))
		if len(nsList) != total {
			problems = append(problems, fmt.Sprintf("%d pod namespaces for %d pods", len(nsList), total))
		}
		return len(problems) == 0
	}
	deadline := time.Now().Add(90 * time.Second)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("leaks after 90 s: %s", strings.Join(problems, "; "))
		}
		time.Sleep(time.Second)
	}
}
