package proxy

import (
	"context"
	"errors"
	"net/netip"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/ovs-cni/antrea/pkg/agent/route"
	of "github.com/ovs-cni/antrea/pkg/ovs/openflow"
)

// fakeFlows records the flows of every owner and the owners of each call.
type fakeFlows struct {
	mu     sync.Mutex
	owners map[string][]of.Flow
	calls  [][]string
}

func (f *fakeFlows) SyncAll(_ context.Context, _ int, desired map[string][]of.Flow) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var owners []string
	for o, flows := range desired {
		owners = append(owners, o)
		if len(flows) == 0 {
			delete(f.owners, o)
		} else {
			f.owners[o] = flows
		}
	}
	sort.Strings(owners)
	f.calls = append(f.calls, owners)
	return nil
}

// fakeGroups is a switch's group table; failNext fails the next Apply.
type fakeGroups struct {
	mu       sync.Mutex
	groups   map[uint32]of.GroupEntry
	failNext bool
}

func (g *fakeGroups) Apply(_ context.Context, ch of.Change) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.failNext {
		g.failNext = false
		return errors.New("switch went away")
	}
	for _, e := range ch.AddGroups {
		g.groups[e.ID] = e
	}
	for _, id := range ch.DelGroups {
		delete(g.groups, id)
	}
	return nil
}

type fakeHost struct {
	ports []route.NodePort
	calls int
}

func (h *fakeHost) SyncNodePorts(_ context.Context, _ netip.Addr, ports []route.NodePort) error {
	h.ports = ports
	h.calls++
	return nil
}

type controllerFixture struct {
	t       testing.TB
	ctx     context.Context
	client  *fake.Clientset
	c       *Controller
	flows   *fakeFlows
	groups  *fakeGroups
	host    *fakeHost
	metrics *Metrics
}

func newControllerFixture(t testing.TB) *controllerFixture {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	client := fake.NewClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	f := &controllerFixture{t: t, ctx: ctx, client: client,
		flows: &fakeFlows{owners: map[string][]of.Flow{}}, groups: &fakeGroups{groups: map[uint32]of.GroupEntry{}},
		host: &fakeHost{}, metrics: NewMetrics(prometheus.NewRegistry())}
	c, err := NewController("node-1", factory, f.flows, f.groups, f.host, f.metrics)
	require.NoError(t, err)
	f.c = c
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	return f
}

func service(name, clusterIP string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.ServiceSpec{ClusterIP: clusterIP, Type: corev1.ServiceTypeClusterIP, Ports: ports}}
}

func tcpPort(name string, port int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: port, Protocol: corev1.ProtocolTCP}
}

func slice(svc, name string, port int32, ips ...string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptrTo("http"), Port: ptrTo(port), Protocol: ptrTo(corev1.ProtocolTCP)}},
	}
	for _, ip := range ips {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptrTo(true)}})
	}
	return s
}

func ptrTo[T any](v T) *T { return &v }

// sync waits until the caches show cond, then syncs.
func (f *controllerFixture) sync(cond func() bool) error {
	f.t.Helper()
	require.NoError(f.t, wait.PollUntilContextTimeout(f.ctx, 5*time.Millisecond, 5*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil }), "the informer caches did not catch up")
	return f.c.Sync(f.ctx)
}

func (f *controllerFixture) hasSlice(name string, endpoints int) func() bool {
	return func() bool {
		objs := f.c.slices.List()
		for _, o := range objs {
			if s := o.(*discoveryv1.EndpointSlice); s.Name == name && len(s.Endpoints) == endpoints {
				return true
			}
		}
		return false
	}
}

func (f *controllerFixture) hasService(name string, present bool) func() bool {
	return func() bool {
		_, err := f.c.services.Services("default").Get(name)
		return (err == nil) == present
	}
}

func (f *controllerFixture) bucketIPs(id uint32) []string {
	f.groups.mu.Lock()
	defer f.groups.mu.Unlock()
	var ips []string
	for _, b := range f.groups.groups[id].Buckets {
		for _, a := range b.Actions {
			if ct, ok := a.(of.CT); ok && ct.NAT != nil {
				ips = append(ips, netip.AddrFrom4([4]byte(ct.NAT.IPMin)).String())
			}
		}
	}
	sort.Strings(ips)
	return ips
}

func TestControllerRealizesChangesIncrementally(t *testing.T) {
	f := newControllerFixture(t)
	ctx := f.ctx
	_, err := f.client.CoreV1().Services("default").Create(ctx, service("web", "10.96.0.10", tcpPort("http", 80)), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = f.client.CoreV1().Services("default").Create(ctx, service("db", "10.96.0.20", tcpPort("http", 5432)), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = f.client.DiscoveryV1().EndpointSlices("default").Create(ctx, slice("web", "web-1", 8080, "10.10.0.3", "10.10.1.4"), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = f.client.DiscoveryV1().EndpointSlices("default").Create(ctx, slice("db", "db-1", 5432, "10.10.0.9"), metav1.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, f.sync(f.hasSlice("db-1", 1)))
	select {
	case <-f.c.Synced():
	default:
		t.Fatal("Synced is not closed after the first sync")
	}

	web, db := "proxy/service/10.96.0.10:80/TCP", "proxy/service/10.96.0.20:5432/TCP"
	require.Contains(t, f.flows.owners, web)
	require.Contains(t, f.flows.owners, db)
	assert.Equal(t, []string{web, db}, f.flows.calls[len(f.flows.calls)-1], "the first sync installs both ports")
	// Ids in the order of the Services' keys: db first.
	assert.Equal(t, []string{"10.10.0.9"}, f.bucketIPs(1))
	assert.Equal(t, []string{"10.10.0.3", "10.10.1.4"}, f.bucketIPs(2))
	assert.Equal(t, float64(2), testutil.ToFloat64(f.metrics.ServicePorts))
	assert.Equal(t, float64(3), testutil.ToFloat64(f.metrics.Endpoints))
	assert.Equal(t, []route.NodePort{}, f.host.ports, "the host gets the (empty) node ports on the first sync")

	// One endpoint of web changes: only web's port is synced, with the
	// change's trigger time observed.
	changed := slice("web", "web-1", 8080, "10.10.0.3", "10.10.1.5")
	trigger := time.Now()
	changed.Annotations = map[string]string{corev1.EndpointsLastChangeTriggerTime: trigger.Format(time.RFC3339Nano)}
	_, err = f.client.DiscoveryV1().EndpointSlices("default").Update(ctx, changed, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.NoError(t, f.sync(func() bool { return f.c.slices.List() != nil && f.bucketIPsInCache("web-1", "10.10.1.5") }))
	assert.Equal(t, []string{web}, f.flows.calls[len(f.flows.calls)-1])
	assert.Equal(t, []string{"10.10.0.3", "10.10.1.5"}, f.bucketIPs(2))
	assert.Equal(t, 1, testutil.CollectAndCount(f.metrics.NetworkProgramming))
	var m = histogramOf(t, f.metrics.NetworkProgramming)
	assert.Equal(t, uint64(1), m.GetSampleCount())
	assert.Greater(t, m.GetSampleSum(), 0.0)
	assert.LessOrEqual(t, m.GetSampleSum(), time.Since(trigger).Seconds(), "from the trigger to the sync")

	// A change whose trigger time is older than the controller (as the
	// initial list shows them) is not observed.
	old := slice("web", "web-1", 8080, "10.10.0.3", "10.10.1.6")
	old.Annotations = map[string]string{corev1.EndpointsLastChangeTriggerTime: time.Now().Add(-time.Hour).Format(time.RFC3339Nano)}
	_, err = f.client.DiscoveryV1().EndpointSlices("default").Update(ctx, old, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.NoError(t, f.sync(func() bool { return f.bucketIPsInCache("web-1", "10.10.1.6") }))
	assert.Equal(t, uint64(1), histogramOf(t, f.metrics.NetworkProgramming).GetSampleCount())

	// A sync with nothing dirty touches nothing.
	calls := len(f.flows.calls)
	require.NoError(t, f.c.Sync(ctx))
	assert.Len(t, f.flows.calls, calls)

	// db goes: its flows and group go, and its id is free again.
	require.NoError(t, f.client.CoreV1().Services("default").Delete(ctx, "db", metav1.DeleteOptions{}))
	require.NoError(t, f.sync(f.hasService("db", false)))
	assert.NotContains(t, f.flows.owners, db)
	f.groups.mu.Lock()
	assert.NotContains(t, f.groups.groups, uint32(1))
	f.groups.mu.Unlock()
	_, err = f.client.CoreV1().Services("default").Create(ctx, service("cache", "10.96.0.30", tcpPort("http", 6379)), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = f.client.DiscoveryV1().EndpointSlices("default").Create(ctx, slice("cache", "cache-1", 6379, "10.10.0.7"), metav1.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, f.sync(f.hasSlice("cache-1", 1)))
	assert.Equal(t, []string{"10.10.0.7"}, f.bucketIPs(1), "the freed id goes to the new port")
	assert.Equal(t, float64(2), testutil.ToFloat64(f.metrics.ServicePorts))
	assert.Equal(t, float64(3), testutil.ToFloat64(f.metrics.Endpoints))
}

func (f *controllerFixture) dirtyCount() int {
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	return len(f.c.dirty)
}

func (f *controllerFixture) bucketIPsInCache(sliceName, ip string) bool {
	for _, o := range f.c.slices.List() {
		if s := o.(*discoveryv1.EndpointSlice); s.Name == sliceName {
			for _, e := range s.Endpoints {
				if e.Addresses[0] == ip {
					return true
				}
			}
		}
	}
	return false
}

func TestControllerDuplicateClusterIPWaitsForTheHolder(t *testing.T) {
	f := newControllerFixture(t)
	ctx := f.ctx
	_, err := f.client.CoreV1().Services("default").Create(ctx, service("old", "10.96.0.10", tcpPort("http", 80)), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = f.client.DiscoveryV1().EndpointSlices("default").Create(ctx, slice("old", "old-1", 8080, "10.10.0.3"), metav1.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, f.sync(f.hasSlice("old-1", 1)))

	// A second Service with the same address and port (as while a
	// Service is deleted and created again) waits.
	_, err = f.client.CoreV1().Services("default").Create(ctx, service("new", "10.96.0.10", tcpPort("http", 80)), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = f.client.DiscoveryV1().EndpointSlices("default").Create(ctx, slice("new", "new-1", 9090, "10.10.0.8"), metav1.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, f.sync(f.hasSlice("new-1", 1)))
	assert.Equal(t, []string{"10.10.0.3"}, f.bucketIPs(1), "the holder keeps the port")

	// The holder goes: the waiting Service takes the port in the same sync.
	require.NoError(t, f.client.CoreV1().Services("default").Delete(ctx, "old", metav1.DeleteOptions{}))
	require.NoError(t, f.sync(f.hasService("old", false)))
	assert.Equal(t, []string{"10.10.0.8"}, f.bucketIPs(1))
	assert.Contains(t, f.flows.owners, "proxy/service/10.96.0.10:80/TCP")
}

func TestControllerRetriesAFailedApply(t *testing.T) {
	f := newControllerFixture(t)
	ctx := f.ctx
	_, err := f.client.CoreV1().Services("default").Create(ctx, service("web", "10.96.0.10", tcpPort("http", 80)), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = f.client.DiscoveryV1().EndpointSlices("default").Create(ctx, slice("web", "web-1", 8080, "10.10.0.3"), metav1.CreateOptions{})
	require.NoError(t, err)
	f.groups.failNext = true
	require.Error(t, f.sync(f.hasSlice("web-1", 1)))
	assert.Empty(t, f.flows.owners, "no flow points to a group that failed to install")
	assert.Equal(t, float64(1), testutil.ToFloat64(f.metrics.SyncErrors))
	// The retry has no new event: the pending port is applied all the same.
	require.NoError(t, f.c.Sync(ctx))
	assert.Contains(t, f.flows.owners, "proxy/service/10.96.0.10:80/TCP")
	assert.Equal(t, []string{"10.10.0.3"}, f.bucketIPs(1))
}

func TestControllerNodePorts(t *testing.T) {
	f := newControllerFixture(t)
	ctx := f.ctx
	svc := service("web", "10.96.0.10", corev1.ServicePort{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, NodePort: 30080})
	svc.Spec.Type = corev1.ServiceTypeNodePort
	svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	_, err := f.client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = f.client.DiscoveryV1().EndpointSlices("default").Create(ctx, slice("web", "web-1", 8080, "10.10.0.3"), metav1.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, f.sync(f.hasSlice("web-1", 1)))
	assert.Equal(t, []route.NodePort{{Protocol: "tcp", Port: 30080, Local: true}}, f.host.ports)

	// An endpoint change leaves the node ports alone.
	calls := f.host.calls
	_, err = f.client.DiscoveryV1().EndpointSlices("default").Update(ctx, slice("web", "web-1", 8080, "10.10.0.4"), metav1.UpdateOptions{})
	require.NoError(t, err)
	require.NoError(t, f.sync(func() bool { return f.bucketIPsInCache("web-1", "10.10.0.4") }))
	assert.Equal(t, calls, f.host.calls, "no node-port change, no call to the host")

	svc.Spec.Type = corev1.ServiceTypeClusterIP
	svc.Spec.Ports[0].NodePort = 0
	svc.Spec.ExternalTrafficPolicy = ""
	_, err = f.client.CoreV1().Services("default").Update(ctx, svc, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.NoError(t, f.sync(func() bool {
		s, err := f.c.services.Services("default").Get("web")
		return err == nil && s.Spec.Type == corev1.ServiceTypeClusterIP
	}))
	assert.Empty(t, f.host.ports)
}

func histogramOf(t *testing.T, h prometheus.Histogram) interface {
	GetSampleCount() uint64
	GetSampleSum() float64
} {
	t.Helper()
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(h))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	require.Len(t, mfs, 1)
	return mfs[0].GetMetric()[0].GetHistogram()
}
