// Package e2e runs the lab end to end: it brings up a lab with the real
// control plane and OVS nodes, exercises it through the antrea-lab command
// line and the Kubernetes API, and tears everything down again. It needs
// root, Open vSwitch, and the binaries `make build kube` produces; without
// them it fails (it never skips).
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/ovs-cni/antrea/pkg/lab/controlplane"
	"github.com/ovs-cni/antrea/pkg/lab/layout"
	"github.com/ovs-cni/antrea/pkg/lab/netnsutil"
	"github.com/ovs-cni/antrea/pkg/lab/proc"
)

// Lab is a lab under test, driven through bin/antrea-lab.
type Lab struct {
	Layout layout.Lab
	Client kubernetes.Interface
	root   string
}

var (
	repoRoot = func() string {
		_, file, _, _ := runtime.Caller(0)
		return filepath.Join(filepath.Dir(file), "..", "..")
	}()
	labBinDir = filepath.Join(repoRoot, "bin")
	labBin    = filepath.Join(labBinDir, "antrea-lab")
	// shared is the lab on the reference bridge CNI that the lab's own
	// tests use; antreaLab runs our CNI. TestMain brings both up.
	shared    *Lab
	antreaLab *Lab
)

// NewLab returns a handle on lab `name` with its state under _output/<name>.
// E2E_LAB_SUFFIX, when set, is appended to every lab name, so that two
// checkouts can run their e2e tests on one machine at the same time.
func NewLab(name string) (*Lab, error) {
	name += os.Getenv("E2E_LAB_SUFFIX")
	l, err := layout.New(name, filepath.Join(repoRoot, "_output", name))
	if err != nil {
		return nil, err
	}
	return &Lab{Layout: l, root: repoRoot}, nil
}

// Run runs antrea-lab with this lab's name and returns stdout, stderr and
// the exit code.
func (l *Lab) Run(args ...string) (string, string, int) {
	full := append([]string{"--name", l.Layout.Name, "--state-dir", l.Layout.StateDir}, args...)
	cmd := exec.Command(labBin, full...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
		errb.WriteString(err.Error())
	}
	return out.String(), errb.String(), code
}

// Up brings the lab up and connects a client.
func (l *Lab) Up(args ...string) error {
	out, errOut, code := l.Run(append([]string{"up"}, args...)...)
	if code != 0 {
		return fmt.Errorf("antrea-lab up exited %d:\n%s\n%s", code, out, errOut)
	}
	cs, _, err := controlplane.Client(l.Layout, controlplane.Admin)
	if err != nil {
		return err
	}
	l.Client = cs
	return nil
}

// Down removes the lab and checks that nothing of it survives.
func (l *Lab) Down() error {
	recs, _ := proc.Load(l.Layout.PIDDir())
	created, _ := os.ReadFile(l.Layout.CreatedPathsFile())
	out, errOut, code := l.Run("down")
	if code != 0 {
		return fmt.Errorf("antrea-lab down exited %d:\n%s\n%s", code, out, errOut)
	}
	var problems []string
	if left, _ := netnsutil.List(l.Layout.NetnsPrefix()); len(left) > 0 {
		problems = append(problems, "network namespaces left: "+strings.Join(left, ", "))
	}
	for _, r := range recs {
		if r.Alive() {
			problems = append(problems, fmt.Sprintf("process %s (pid %d) survived", r.Name, r.PID))
		}
	}
	if pids := processesMentioning(l.Layout.StateDir + "/"); len(pids) > 0 {
		problems = append(problems, fmt.Sprintf("processes still use %s: %v", l.Layout.StateDir, pids))
	}
	for _, p := range strings.Fields(string(created)) {
		if _, err := os.Lstat(p); err == nil {
			problems = append(problems, "mount point left on the host: "+p)
		}
	}
	if _, err := os.Stat(l.Layout.StateFile()); err == nil {
		problems = append(problems, "state file left: "+l.Layout.StateFile())
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// processesMentioning lists live processes whose command line contains s.
func processesMentioning(s string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(s)) {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
				continue // zombies are waiting for init to reap them
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e: FAIL: the lab e2e tests need root (network namespaces, OVS); run them as root, e.g. through 'make test'")
		return 1
	}
	if _, err := os.Stat(labBin); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: %s is missing: run 'make build kube' (or 'make test')\n", labBin)
		return 1
	}
	runsTests := !isBenchOnly()
	if !runsTests {
		return m.Run()
	}
	bridgeLab, err := NewLab("e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	antrea, err := NewLab("e2e-antrea")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	labs := []*Lab{bridgeLab, antrea}
	downAll := func() error {
		var errs []error
		for _, l := range labs {
			if err := l.Down(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", l.Layout.Name, err))
			}
		}
		return errors.Join(errs...)
	}
	// A previous run that was killed may have left labs behind.
	for _, l := range labs {
		if _, _, code := l.Run("down"); code != 0 {
			fmt.Fprintf(os.Stderr, "e2e: could not clean up an earlier lab %s\n", l.Layout.Name)
		}
	}
	// Tear down on Ctrl-C as well as on the normal path.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		_ = downAll()
		os.Exit(1)
	}()
	// Both labs come up at once: a 2-node lab on the reference bridge CNI
	// (the lab's own tests) and a 3-node lab on antrea.
	start := time.Now()
	upErrs := make(chan error, 2)
	go func() { upErrs <- bridgeLab.Up("--nodes", "2", "--cni", "bridge") }()
	go func() { upErrs <- antrea.Up("--nodes", "3", "--cni", "antrea") }()
	for range labs {
		if err := <-upErrs; err != nil {
			fmt.Fprintln(os.Stderr, "e2e: FAIL: bring a lab up:", err)
			for _, l := range labs {
				dumpLogs(l)
			}
			_ = downAll()
			return 1
		}
	}
	fmt.Printf("e2e: labs up (bridge: 2 nodes, antrea: 3 nodes) in %.1fs\n", time.Since(start).Seconds())
	shared, antreaLab = bridgeLab, antrea
	code := m.Run()
	if code != 0 {
		for _, l := range labs {
			dumpLogs(l)
		}
	}
	if err := downAll(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: FAIL: down left things behind:", err)
		return 1
	}
	fmt.Println("e2e: labs down, nothing left behind")
	return code
}

func isBenchOnly() bool {
	for _, a := range os.Args {
		if strings.HasPrefix(a, "-test.run=^$") {
			return true
		}
	}
	return false
}

// dumpLogs prints the tail of every lab log, to explain a failure in CI.
func dumpLogs(l *Lab) {
	files, _ := filepath.Glob(filepath.Join(l.Layout.LogDir(), "*.log"))
	// Antrea's own containers, run by the kubelets.
	for _, c := range []string{"antrea-agent", "antrea-ovs", "antrea-controller", "install-cni"} {
		more, _ := filepath.Glob(filepath.Join(l.Layout.StateDir, "nodes", "*", "kubelet", "pods", "*", c+".log"))
		files = append(files, more...)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		name, _ := filepath.Rel(l.Layout.StateDir, f)
		fmt.Fprintf(os.Stderr, "---- %s (last %d lines)\n%s\n", name, len(lines), strings.Join(lines, "\n"))
	}
}

// ctx returns a context bounded by the test's deadline.
func ctx(t *testing.T, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

// createNamespace makes a namespace for one test and deletes it after.
func createNamespace(t *testing.T, l *Lab, name string) {
	t.Helper()
	c := ctx(t, 30*time.Second)
	_, err := l.Client.CoreV1().Namespaces().Create(c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = l.Client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// waitPods waits until the pods matching selector in ns satisfy ok.
func waitPods(t *testing.T, l *Lab, ns, selector string, timeout time.Duration, ok func([]corev1.Pod) bool) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, timeout, true, func(c context.Context) (bool, error) {
		list, err := l.Client.CoreV1().Pods(ns).List(c, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, nil
		}
		pods = list.Items
		return ok(pods), nil
	})
	if err != nil {
		t.Fatalf("pods %q in %s: condition not met after %s; last state:\n%s", selector, ns, timeout, describePods(pods))
	}
	return pods
}

func describePods(pods []corev1.Pod) string {
	var b strings.Builder
	for _, p := range pods {
		fmt.Fprintf(&b, "  %s node=%s phase=%s ip=%s ready=%v\n", p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.PodIP, podReady(&p))
	}
	return b.String()
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func allRunningReady(n int) func([]corev1.Pod) bool {
	return func(pods []corev1.Pod) bool {
		if len(pods) != n {
			return false
		}
		for i := range pods {
			if pods[i].Status.Phase != corev1.PodRunning || !podReady(&pods[i]) || pods[i].Status.PodIP == "" {
				return false
			}
		}
		return true
	}
}
