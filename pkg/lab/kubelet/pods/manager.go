// Package pods runs the pods bound to the lab kubelet's node: one worker per
// pod (serialized per pod, parallel across pods) creates the sandbox through
// CNI, starts container processes, runs probes, reports status and tears
// everything down when the pod goes away.
package pods

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/lab/kubelet/cni"
	"github.com/ovs-cni/antrea/pkg/lab/kubelet/env"
	"github.com/ovs-cni/antrea/pkg/lab/kubelet/podstate"
	"github.com/ovs-cni/antrea/pkg/lab/kubelet/probe"
	"github.com/ovs-cni/antrea/pkg/lab/kubelet/proc"
	"github.com/ovs-cni/antrea/pkg/lab/kubelet/volumes"
)

// Netns creates and deletes pod network namespaces.
type Netns interface {
	Create(name string) error
	Delete(name string) error
	Path(name string) string
}

// Volumes materializes a pod's volumes.
type Volumes interface {
	// Prepare writes the pod's volumes below podDir and returns the host
	// path of each supported volume and when they need refreshing.
	Prepare(ctx context.Context, pod *corev1.Pod, podDir string) (volumes.Set, error)
}

// Config of the pod manager.
type Config struct {
	Client   kubernetes.Interface
	Recorder record.EventRecorder
	NodeName string
	NodeIP   string
	LabName  string
	// BinDir holds our own binaries and lab-agnhost.
	BinDir string
	// SelfExe is the kubelet binary, for the run-container subcommand.
	SelfExe string
	Store   podstate.Store
	// CreatedPathsFile is the lab-wide list of mount points created on the
	// host for containers; `antrea-lab down` removes them.
	CreatedPathsFile string
	Network          cni.Network
	Runtime          proc.Runtime
	Netns            Netns
	Checker          probe.Checker
	Volumes          Volumes
	// SyncPeriod is how often each worker re-checks its pod (1 s if zero).
	SyncPeriod time.Duration
	// CheckPeriod is how often a running sandbox's network is verified
	// with CNI CHECK (30 s if zero); the first check of an adopted sandbox
	// runs at once.
	CheckPeriod time.Duration
	// Backoffs; zero means the defaults.
	SandboxBackoffMin, SandboxBackoffMax time.Duration
	RestartBackoffMin, RestartBackoffMax time.Duration
	// MaxGracePeriod caps the stop grace period (10 s if zero).
	MaxGracePeriod time.Duration
	Now            func() time.Time
}

func (c *Config) validate() error {
	switch {
	case c.Client == nil:
		return errors.New("pod manager: field client is nil")
	case c.Recorder == nil:
		return errors.New("pod manager: field recorder is nil")
	case c.NodeName == "":
		return errors.New("pod manager: field nodeName is empty")
	case c.NodeIP == "":
		return errors.New("pod manager: field nodeIP is empty")
	case c.LabName == "":
		return errors.New("pod manager: field labName is empty")
	case c.BinDir == "":
		return errors.New("pod manager: field binDir is empty")
	case c.Store.Dir == "":
		return errors.New("pod manager: field store.dir is empty")
	case c.CreatedPathsFile == "":
		return errors.New("pod manager: field createdPathsFile is empty")
	case c.Network == nil || c.Runtime == nil || c.Netns == nil || c.Checker == nil || c.Volumes == nil:
		return errors.New("pod manager: fields network, runtime, netns, checker and volumes are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.SyncPeriod, time.Second)
	def(&c.CheckPeriod, 30*time.Second)
	def(&c.SandboxBackoffMin, time.Second)
	def(&c.SandboxBackoffMax, 30*time.Second)
	def(&c.RestartBackoffMin, 5*time.Second)
	def(&c.RestartBackoffMax, 2*time.Minute)
	def(&c.MaxGracePeriod, 10*time.Second)
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Manager owns the pod workers.
type Manager struct {
	cfg    Config
	env    *env.Resolver
	lister corelisters.PodLister
	synced cache.InformerSynced

	mu      sync.Mutex
	workers map[types.UID]*worker
	wg      sync.WaitGroup
	ctx     context.Context
}

// New validates cfg and returns a Manager.
func New(cfg Config) (*Manager, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Manager{
		cfg:     cfg,
		env:     &env.Resolver{Client: cfg.Client, HostIP: cfg.NodeIP},
		workers: map[types.UID]*worker{},
	}, nil
}

// Run watches the node's pods until ctx ends. It does not stop the pods.
func (m *Manager) Run(ctx context.Context) error {
	m.ctx = ctx
	factory := informers.NewSharedInformerFactoryWithOptions(m.cfg.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", m.cfg.NodeName).String()
		}))
	inf := factory.Core().V1().Pods()
	m.lister = inf.Lister()
	m.synced = inf.Informer().HasSynced
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), m.synced) {
		return fmt.Errorf("pod informer of node %s did not sync: %w", m.cfg.NodeName, ctx.Err())
	}
	if err := m.adopt(ctx); err != nil {
		return err
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { m.observe(obj, false) },
		UpdateFunc: func(_, obj any) { m.observe(obj, false) },
		DeleteFunc: func(obj any) { m.observe(obj, true) },
	}); err != nil {
		return fmt.Errorf("watch pods: %w", err)
	}
	klog.InfoS("Pod manager started", "node", m.cfg.NodeName)
	<-ctx.Done()
	factory.Shutdown()
	m.wg.Wait()
	return nil
}

// adopt loads the persisted pods: those still in the API keep running,
// the others are torn down. Then it garbage-collects CNI attachments.
func (m *Manager) adopt(ctx context.Context) error {
	states, broken, err := m.cfg.Store.LoadAll()
	if err != nil {
		return err
	}
	for _, uid := range broken {
		klog.InfoS("Removing unreadable pod state", "podUID", uid)
		if err := m.cfg.Store.Remove(uid); err != nil {
			klog.ErrorS(err, "Remove unreadable pod state failed", "podUID", uid)
		}
	}
	var valid []cni.Attachment
	for _, st := range states {
		pod, _ := m.lister.Pods(st.Namespace).Get(st.Name)
		kept := pod != nil && string(pod.UID) == st.UID && pod.DeletionTimestamp == nil
		klog.InfoS("Found pod state from a previous run", "pod", klog.KRef(st.Namespace, st.Name), "podUID", st.UID, "adopt", kept)
		if kept && st.NetworkReady && st.SandboxID != "" {
			valid = append(valid, cni.Attachment{ContainerID: st.SandboxID})
		}
	}
	// GC before any worker runs: a worker may replace an unfinished
	// sandbox, and the new one is not in this list.
	if err := m.cfg.Network.GC(ctx, valid); err != nil && !errors.Is(err, cni.ErrNotInitialized) {
		klog.ErrorS(err, "CNI garbage collection failed", "validAttachments", len(valid))
	}
	for _, st := range states {
		m.startWorker(types.UID(st.UID), st.Namespace, st.Name, st)
	}
	return nil
}

func (m *Manager) observe(obj any, deleted bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	m.mu.Lock()
	w := m.workers[pod.UID]
	m.mu.Unlock()
	if w != nil {
		w.kick()
		return
	}
	if deleted {
		return
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		if pod.DeletionTimestamp == nil {
			return
		}
	}
	m.startWorker(pod.UID, pod.Namespace, pod.Name, nil)
}

func (m *Manager) startWorker(uid types.UID, ns, name string, st *podstate.Pod) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.workers[uid]; ok {
		return
	}
	w := newWorker(m, uid, ns, name, st)
	m.workers[uid] = w
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		w.run(m.ctx)
		m.mu.Lock()
		delete(m.workers, uid)
		m.mu.Unlock()
	}()
}

// pod returns the API object of the worker's pod, nil once it is gone.
func (m *Manager) pod(uid types.UID, ns, name string) *corev1.Pod {
	p, err := m.lister.Pods(ns).Get(name)
	if err != nil || p.UID != uid {
		return nil
	}
	return p
}
