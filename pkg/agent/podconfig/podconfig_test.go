package podconfig_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"sync"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ovs-cni/antrea/pkg/agent/cniserver"
	"github.com/ovs-cni/antrea/pkg/agent/podconfig"
	"github.com/ovs-cni/antrea/pkg/agent/podnet"
	cniv1 "github.com/ovs-cni/antrea/pkg/apis/cni/v1"
	"github.com/ovs-cni/antrea/pkg/ovs/openflow/openflowtest"
	"github.com/ovs-cni/antrea/pkg/ovs/ovsdb"
	"github.com/ovs-cni/antrea/pkg/ovs/ovsdb/ovsdbtest"
)

// connected is what assertConnected found of a connected pod.
type connected struct {
	ip     string
	mac    string
	ofport uint32
}

// assertConnected checks everything an ADD must leave behind: the result,
// the pod side, the host side, the OVS port, the flows, IPAM and state.
func (e *env) assertConnected(t *testing.T, c *podconfig.Configurator, p *pod, res *current.Result) connected {
	t.Helper()
	hostIf := p.hostIf()

	require.Len(t, res.Interfaces, 2, "host veth and pod interface")
	assert.Equal(t, hostIf, res.Interfaces[0].Name)
	assert.Empty(t, res.Interfaces[0].Sandbox, "the host side is in no sandbox")
	assert.Equal(t, ifName, res.Interfaces[1].Name)
	assert.Equal(t, p.path, res.Interfaces[1].Sandbox)
	mac := res.Interfaces[1].Mac
	require.NotEmpty(t, mac)
	require.Len(t, res.IPs, 1)
	require.NotNil(t, res.IPs[0].Interface)
	assert.Equal(t, 1, *res.IPs[0].Interface, "the address is on the pod interface")
	ip := res.IPs[0].Address.IP.String()
	addr, err := netip.ParseAddr(ip)
	require.NoError(t, err)
	assert.True(t, podCIDR.Contains(addr), "%s in %s", ip, podCIDR)
	assert.Equal(t, ip+"/24", res.IPs[0].Address.String())
	assert.Equal(t, gwIP.String(), res.IPs[0].Gateway.String())
	require.Len(t, res.Routes, 1)
	assert.Equal(t, "0.0.0.0/0", res.Routes[0].Dst.String())
	assert.Equal(t, gwIP.String(), res.Routes[0].GW.String())

	allocated, ok := e.ipam.allocated(p.id)
	assert.True(t, ok, "IPAM holds the address")
	assert.Equal(t, ip, allocated.String())

	v := p.view(t)
	require.True(t, v.hasIf, "pod interface %s exists in the pod netns", ifName)
	assert.Equal(t, mac, v.mac)
	assert.Contains(t, v.addrs, ip+"/24")
	assert.Equal(t, gwIP.String(), v.defaultGW, "default route through the gateway")

	link := e.hostLink(hostIf)
	require.NotNil(t, link, "host veth %s exists in the node netns", hostIf)
	assert.Equal(t, "veth", link.Type())
	assert.NotZero(t, link.Attrs().RawFlags&unix.IFF_NOARP, "ARP is off on the host side")
	assert.Equal(t, testMTU, link.Attrs().MTU)

	port, ok := e.port(hostIf)
	require.True(t, ok, "the bridge has port %s", hostIf)
	assert.Greater(t, port.OFPort, int32(2), "not the tunnel's or the gateway's number")
	assert.Equal(t, map[string]string{
		podconfig.KeyContainerID: p.id, podconfig.KeyPodNamespace: namespace, podconfig.KeyPodName: p.name,
		podconfig.KeyIP: ip, podconfig.KeyMAC: mac, podconfig.KeyIfName: ifName, podconfig.KeyNetns: p.path,
	}, port.ExternalIDs)

	dump := e.ofc.Dump()
	for _, l := range podFlowLines(uint32(port.OFPort), mac, ip) {
		assert.Contains(t, dump, l)
	}

	var found bool
	for _, s := range c.Pods() {
		if s.ContainerID == p.id {
			found = true
			assert.Equal(t, hostIf, s.HostIf)
			assert.Equal(t, ip, s.IP.String())
			assert.Equal(t, mac, s.MAC.String())
			assert.Equal(t, uint32(port.OFPort), s.OFPort)
		}
	}
	assert.True(t, found, "the configurator tracks %s", p.id)
	return connected{ip: ip, mac: mac, ofport: uint32(port.OFPort)}
}

// assertGone checks that nothing of the pod is left: no state, no port, no
// host veth, no address, no flows of it, no pod interface (if its netns is
// still there).
func (e *env) assertGone(t *testing.T, c *podconfig.Configurator, p *pod, podNSExists bool) {
	t.Helper()
	for _, s := range c.Pods() {
		assert.NotEqual(t, p.id, s.ContainerID, "the configurator forgot the pod")
	}
	_, ok := e.port(p.hostIf())
	assert.False(t, ok, "port %s is deleted", p.hostIf())
	assert.Nil(t, e.hostLink(p.hostIf()), "host veth %s is deleted", p.hostIf())
	_, ok = e.ipam.allocated(p.id)
	assert.False(t, ok, "the address is released")
	if podNSExists {
		assert.False(t, p.view(t).hasIf, "no %s left in the pod netns", ifName)
	}
}

func asError(t *testing.T, err error) *cniserver.Error {
	t.Helper()
	var ce *cniserver.Error
	require.True(t, errors.As(err, &ce), "want a *cniserver.Error, got %T: %v", err, err)
	return ce
}

func TestAdd(t *testing.T) {
	tests := []struct {
		name              string
		podName           string
		disableTxChecksum bool
	}{
		{name: "short pod name", podName: "web"},
		{name: "long pod name is cut in the veth name", podName: "nginx-6db489d4b7-8bfw2"},
		{name: "userspace datapath: TX checksum offload off", podName: "dpdk", disableTxChecksum: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *podconfig.Config) { c.DisableTxChecksum = tc.disableTxChecksum })
			p := e.newPod(tc.podName)
			res := e.mustAdd(p)
			got := e.assertConnected(t, e.c, p, res)
			assert.Equal(t, "10.10.1.2", got.ip, "the first address of the pool")
			assert.Equal(t, uint32(3), got.ofport, "the first free OpenFlow port")
			assert.LessOrEqual(t, len(p.hostIf()), 15)
			assert.Equal(t, 1, e.ipam.addsOf(p.id))
			assert.Equal(t, []string{p.hostIf()}, e.podPorts())

			out, err := exec.Command("nsenter", "--net="+p.path, "ethtool", "-k", ifName).CombinedOutput()
			require.NoError(t, err, string(out))
			if tc.disableTxChecksum {
				assert.Contains(t, string(out), "tx-checksumming: off")
			} else {
				assert.Contains(t, string(out), "tx-checksumming: on")
			}
		})
	}
}

func TestAddRepeated(t *testing.T) {
	tests := []struct {
		name    string
		repeats int
	}{
		{name: "once more", repeats: 1},
		{name: "three more times", repeats: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			p := e.newPod("web")
			first := e.mustAdd(p)
			want := e.assertConnected(t, e.c, p, first)
			txns, applies, dump := e.bridge.Transactions(), e.ofc.Applies(), e.ofc.Dump()
			for i := 0; i < tc.repeats; i++ {
				again := e.mustAdd(p)
				assert.Equal(t, first, again, "a repeated ADD gives the same result")
			}
			assert.Equal(t, 1, e.ipam.addsOf(p.id), "no second IPAM ADD")
			assert.Equal(t, []string{p.hostIf()}, e.podPorts(), "no second port")
			assert.Equal(t, txns, e.bridge.Transactions(), "no OVSDB write")
			assert.Equal(t, applies, e.ofc.Applies(), "no flow change")
			assert.Equal(t, dump, e.ofc.Dump())
			assert.Len(t, e.c.Pods(), 1)
			assert.Equal(t, want, e.assertConnected(t, e.c, p, first))
		})
	}
}

func TestAddFailureRollsBack(t *testing.T) {
	errEnsure := errors.New("ovsdb: transaction error")
	tests := []struct {
		name string
		// inject prepares the failure (it may change e.cfg: the
		// configurator is built after it) and returns how to heal it,
		// or nil if a retry cannot succeed.
		inject      func(e *env, p *pod) (heal func())
		wantCode    uint // 0: any error
		wantIs      error
		wantErr     string
		wantIPAMAdd bool
		wantIPAMDel bool
		podNSGone   bool
	}{
		{
			name: "IPAM fails: nothing created",
			inject: func(e *env, _ *pod) func() {
				e.ipam.failAdd = errors.New("no free address in 10.10.1.0/24")
				return func() { e.ipam.failAdd = nil }
			},
			wantCode: cniv1.CodeIPAMFailure, wantErr: "no free address", wantIPAMAdd: true,
		},
		{
			name: "bridge EnsurePort fails: veth deleted, address released",
			inject: func(e *env, _ *pod) func() {
				fb := &failingBridge{Fake: e.bridge, ensureErr: errEnsure}
				e.cfg.Bridge = fb
				return func() { fb.ensureErr = nil }
			},
			wantIs: errEnsure, wantErr: "to the bridge", wantIPAMAdd: true, wantIPAMDel: true,
		},
		{
			name: "flow bundle fails: port and veth deleted, address released, no flows",
			inject: func(e *env, _ *pod) func() {
				e.ofc.FailNext(nil)
				return func() {}
			},
			wantIs: openflowtest.ErrInjected, wantErr: "install flows of pod/", wantIPAMAdd: true, wantIPAMDel: true,
		},
		{
			name: "agent not ready: try again later",
			inject: func(e *env, _ *pod) func() {
				var mu sync.Mutex
				notReady := errors.New("OVS is not connected")
				e.cfg.Ready = func() error { mu.Lock(); defer mu.Unlock(); return notReady }
				return func() { mu.Lock(); defer mu.Unlock(); notReady = nil }
			},
			wantCode: types.ErrTryAgainLater, wantErr: "OVS is not connected",
		},
		{
			name: "pod netns gone",
			inject: func(_ *env, p *pod) func() {
				p.destroy()
				return nil
			},
			wantCode: types.ErrInvalidEnvironmentVariables, wantErr: "does not exist", podNSGone: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			bystander := e.newPod("other")
			byRes := e.mustAdd(bystander)
			p := e.newPod("web")
			dumpBefore := e.ofc.Dump()
			heal := tc.inject(e, p)
			// The configurator is rebuilt on the changed config; it
			// learns the bystander back from the bridge.
			e.c = podconfig.New(e.cfg)
			require.NoError(t, e.do(func() error {
				return e.c.Restore(context.Background(), func(string, string) bool { return true })
			}))

			res, err := e.add(e.c, p)
			require.Error(t, err)
			assert.Nil(t, res)
			assert.Contains(t, err.Error(), tc.wantErr)
			if tc.wantCode != 0 {
				assert.Equal(t, tc.wantCode, asError(t, err).Code)
			}
			if tc.wantIs != nil {
				assert.ErrorIs(t, err, tc.wantIs)
			}
			wantAdds := 0
			if tc.wantIPAMAdd {
				wantAdds = 1
			}
			assert.Equal(t, wantAdds, e.ipam.addsOf(p.id))
			wantDels := 0
			if tc.wantIPAMDel {
				wantDels = 1
			}
			assert.Len(t, e.ipam.delsOf(p.id), wantDels)
			e.assertGone(t, e.c, p, !tc.podNSGone)
			assert.Equal(t, dumpBefore, e.ofc.Dump(), "no flow of the pod is left")
			assert.Equal(t, []string{bystander.hostIf()}, e.podPorts())
			e.assertConnected(t, e.c, bystander, byRes)

			if heal == nil {
				return
			}
			heal()
			res, err = e.add(e.c, p)
			require.NoError(t, err, "a retry succeeds once the failure is gone")
			e.assertConnected(t, e.c, p, res)
		})
	}
}

func TestDel(t *testing.T) {
	tests := []struct {
		name  string
		added bool
		// before runs between ADD and DEL.
		before func(p *pod)
		req    func(p *pod) cniserver.PodRequest
		times  int
		// podNSGone: the pod netns is deleted before DEL.
		podNSGone bool
		// wantNetns is the netns IPAM DEL gets ("" means the pod's).
		wantNetns string
	}{
		{name: "after ADD", added: true, times: 1},
		{name: "twice", added: true, times: 2},
		{name: "netns already gone", added: true, before: (*pod).destroy, times: 1, podNSGone: true},
		{
			name: "netns already gone and no CNI_NETNS", added: true, before: (*pod).destroy, times: 1, podNSGone: true,
			req: func(p *pod) cniserver.PodRequest { r := p.req(cniserver.CmdDel); r.Netns = ""; return r },
		},
		{name: "unknown container", times: 1},
		{name: "unknown container, twice, netns gone", before: (*pod).destroy, times: 2, podNSGone: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			bystander := e.newPod("other")
			byRes := e.mustAdd(bystander)
			p := e.newPod("web")
			var conn connected
			if tc.added {
				conn = e.assertConnected(t, e.c, p, e.mustAdd(p))
			}
			if tc.before != nil {
				tc.before(p)
			}
			req := p.req(cniserver.CmdDel)
			if tc.req != nil {
				req = tc.req(p)
			}
			for i := 0; i < tc.times; i++ {
				require.NoError(t, e.del(e.c, req), "DEL #%d", i+1)
			}

			e.assertGone(t, e.c, p, !tc.podNSGone)
			dels := e.ipam.delsOf(p.id)
			require.Len(t, dels, tc.times, "every DEL releases the address, known container or not")
			for _, d := range dels {
				assert.Equal(t, podnet.IPAMRequest{ContainerID: p.id, Netns: p.path, IfName: ifName}, d)
			}
			if tc.added {
				dump := e.ofc.Dump()
				for _, l := range podFlowLines(conn.ofport, conn.mac, conn.ip) {
					assert.NotContains(t, dump, l, "the pod's flows are deleted")
				}
			}
			e.assertConnected(t, e.c, bystander, byRes)
			assert.Equal(t, []string{bystander.hostIf()}, e.podPorts())
			require.NoError(t, e.del(e.c, bystander.req(cniserver.CmdDel)))
			assert.Equal(t, e.baseDump, e.ofc.Dump(), "no pod flows left")
		})
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		// breakIt damages the connected pod.
		breakIt        func(t *testing.T, e *env, p *pod)
		noPrevResult   bool
		otherContainer bool
		wantCode       uint
		wantErr        string
	}{
		{name: "OK after ADD"},
		{name: "OK after ADD without prevResult", noPrevResult: true},
		{
			name: "pod address removed",
			breakIt: func(t *testing.T, _ *env, p *pod) {
				require.NoError(t, p.flushAddrs())
			},
			wantErr: "pod interface eth0 lacks address 10.10.1.2/24",
		},
		{
			name: "pod address removed, checked without prevResult", noPrevResult: true,
			breakIt: func(t *testing.T, _ *env, p *pod) {
				require.NoError(t, p.flushAddrs())
			},
			wantErr: "lacks address 10.10.1.2/24",
		},
		{
			name: "port deleted from the bridge",
			breakIt: func(t *testing.T, e *env, p *pod) {
				require.NoError(t, e.bridge.DeletePort(context.Background(), p.hostIf()))
			},
			wantErr: "is missing or changed",
		},
		{
			name: "port re-created with another ofport",
			breakIt: func(t *testing.T, e *env, p *pod) {
				info, ok := e.port(p.hostIf())
				require.True(t, ok)
				_, err := e.bridge.EnsurePort(context.Background(), ovsdb.PortConfig{Name: p.hostIf(), OFPortRequest: 40, ExternalIDs: info.ExternalIDs})
				require.NoError(t, err)
			},
			wantErr: "is missing or changed",
		},
		{
			name: "pod interface deleted",
			breakIt: func(t *testing.T, _ *env, p *pod) {
				require.NoError(t, p.ns.Do(func(ns.NetNS) error {
					l, err := netlink.LinkByName(ifName)
					if err != nil {
						return err
					}
					return netlink.LinkDel(l)
				}))
			},
			wantErr: "pod interface eth0",
		},
		{name: "unknown container", otherContainer: true, wantCode: types.ErrUnknownContainer, wantErr: "is not connected"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			p := e.newPod("web")
			res := e.mustAdd(p)
			if tc.breakIt != nil {
				tc.breakIt(t, e, p)
			}
			req := p.req(cniserver.CmdCheck)
			if !tc.noPrevResult {
				req.PrevResult = res
			}
			if tc.otherContainer {
				req.ContainerID = "ctr-never-added"
			}
			err := e.check(e.c, req)
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
			if tc.wantCode != 0 {
				assert.Equal(t, tc.wantCode, asError(t, err).Code)
			}
			if tc.name == "port deleted from the bridge" {
				assert.Contains(t, err.Error(), p.hostIf())
				assert.Contains(t, err.Error(), p.id)
			}
		})
	}
}

func TestGC(t *testing.T) {
	tests := []struct {
		name  string
		valid []string // pod names (and unknown ones) the runtime lists
		kept  []string
	}{
		{name: "pods not listed are disconnected", valid: []string{"a"}, kept: []string{"a"}},
		{name: "empty list disconnects every pod", valid: nil, kept: nil},
		{name: "all listed: nothing changes", valid: []string{"a", "b", "c"}, kept: []string{"a", "b", "c"}},
		{name: "unknown attachments are passed on to IPAM", valid: []string{"b", "zombie"}, kept: []string{"b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			pods := map[string]*pod{}
			results := map[string]*current.Result{}
			for _, n := range []string{"a", "b", "c"} {
				pods[n] = e.newPod(n)
				results[n] = e.mustAdd(pods[n])
			}
			var valid []cniserver.Attachment
			var wantGC []types.GCAttachment
			for _, n := range tc.valid {
				valid = append(valid, cniserver.Attachment{ContainerID: "ctr-" + n, IfName: ifName})
				wantGC = append(wantGC, types.GCAttachment{ContainerID: "ctr-" + n, IfName: ifName})
			}
			require.NoError(t, e.do(func() error { return e.c.GC(context.Background(), valid) }))

			_, _, gcs := e.ipam.calls()
			require.Len(t, gcs, 1)
			assert.Equal(t, wantGC, gcs[0], "IPAM GC gets the valid attachments")
			kept := map[string]bool{}
			var keptIfs []string
			for _, n := range tc.kept {
				kept[n] = true
				keptIfs = append(keptIfs, pods[n].hostIf())
			}
			for _, n := range []string{"a", "b", "c"} {
				p := pods[n]
				if kept[n] {
					e.assertConnected(t, e.c, p, results[n])
					assert.Empty(t, e.ipam.delsOf(p.id))
				} else {
					e.assertGone(t, e.c, p, true)
					assert.Len(t, e.ipam.delsOf(p.id), 1)
				}
			}
			assert.Len(t, e.c.Pods(), len(tc.kept))
			assert.ElementsMatch(t, keptIfs, e.podPorts())
			if len(tc.kept) == 0 {
				assert.Equal(t, e.baseDump, e.ofc.Dump())
			}
		})
	}
}

func TestRestore(t *testing.T) {
	e := newEnv(t)
	a, b := e.newPod("alive"), e.newPod("gone")
	resA, resB := e.mustAdd(a), e.mustAdd(b)
	connA := e.assertConnected(t, e.c, a, resA)
	connB := e.assertConnected(t, e.c, b, resB)
	ctx := context.Background()
	// A port of a pod whose identity is damaged: it cannot be restored.
	_, err := e.bridge.EnsurePort(ctx, ovsdb.PortConfig{Name: "broken-abcdef", ExternalIDs: map[string]string{
		podconfig.KeyContainerID: "ctr-broken", podconfig.KeyPodNamespace: namespace, podconfig.KeyPodName: "broken",
		podconfig.KeyIP: "not-an-ip", podconfig.KeyIfName: ifName,
	}})
	require.NoError(t, err)

	// The agent restarts: a new configurator on the same bridge, and a
	// fresh OpenFlow switch (flows of the earlier run are not relied on).
	e.ofc, e.cfg.Flows = e.newFlows()
	e.baseDump = e.ofc.Dump()
	c := podconfig.New(e.cfg)
	var asked []string
	var mu sync.Mutex
	exists := func(namespace, name string) bool {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, namespace+"/"+name)
		return name == a.name
	}
	require.NoError(t, e.do(func() error { return c.Restore(ctx, exists) }))

	assert.Contains(t, asked, namespace+"/"+a.name)
	assert.Contains(t, asked, namespace+"/"+b.name)
	// A is back, with the same flows.
	dump := e.ofc.Dump()
	for _, l := range podFlowLines(connA.ofport, connA.mac, connA.ip) {
		assert.Contains(t, dump, l)
	}
	for _, l := range podFlowLines(connB.ofport, connB.mac, connB.ip) {
		assert.NotContains(t, dump, l)
	}
	e.assertConnected(t, c, a, resA)
	assert.Empty(t, e.ipam.delsOf(a.id))
	require.Len(t, c.Pods(), 1)
	assert.Equal(t, a.id, c.Pods()[0].ContainerID)
	assert.Equal(t, a.path, c.Pods()[0].Netns)

	// B and the broken port are disconnected.
	e.assertGone(t, c, b, true)
	assert.Equal(t, []podnet.IPAMRequest{{ContainerID: b.id, Netns: b.path, IfName: ifName}}, e.ipam.delsOf(b.id))
	assert.Len(t, e.ipam.delsOf("ctr-broken"), 1)
	assert.Equal(t, []string{a.hostIf()}, e.podPorts())
	_, ok := e.port(gwPort)
	assert.True(t, ok, "ports without a container ID are not touched")
	_, ok = e.port(tunPort)
	assert.True(t, ok)

	// The restored pod behaves as if never lost.
	addsBefore := e.ipam.addsOf(a.id)
	again, err := e.add(c, a)
	require.NoError(t, err)
	assert.Equal(t, resA, again, "a repeated ADD after restart gives the same result")
	assert.Equal(t, addsBefore, e.ipam.addsOf(a.id))
	checkReq := a.req(cniserver.CmdCheck)
	checkReq.PrevResult = resA
	require.NoError(t, e.check(c, checkReq))
	require.NoError(t, e.del(c, a.req(cniserver.CmdDel)))
	e.assertGone(t, c, a, true)
	assert.Equal(t, e.baseDump, e.ofc.Dump())
}

func TestStatus(t *testing.T) {
	notReady := errors.New("OVS is not connected")
	tests := []struct {
		name  string
		ready func() error
		want  error
	}{
		{name: "no Ready func", ready: nil},
		{name: "ready", ready: func() error { return nil }},
		{name: "not ready", ready: func() error { return notReady }, want: notReady},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := podconfig.New(podconfig.Config{Ready: tc.ready})
			assert.Equal(t, tc.want, c.Status(context.Background()))
		})
	}
}

func TestConcurrentAdds(t *testing.T) {
	const n = 16
	e := newEnv(t)
	pods := make([]*pod, n)
	for i := range pods {
		pods[i] = e.newPod(fmt.Sprintf("pod%02d", i))
	}
	results := make([]*current.Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = e.add(e.c, p)
		}()
	}
	wg.Wait()

	ips, ofports, macs := map[string]string{}, map[uint32]string{}, map[string]string{}
	for i, p := range pods {
		require.NoError(t, errs[i], "ADD %s", p.name)
		got := e.assertConnected(t, e.c, p, results[i])
		assert.NotContains(t, ips, got.ip, "distinct addresses")
		assert.NotContains(t, ofports, got.ofport, "distinct ofports")
		assert.NotContains(t, macs, got.mac, "distinct MACs")
		ips[got.ip], ofports[got.ofport], macs[got.mac] = p.name, p.name, p.name
	}
	assert.Len(t, e.c.Pods(), n)
	assert.Len(t, e.podPorts(), n)

	// And the same in parallel the other way.
	for i, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.del(e.c, p.req(cniserver.CmdDel))
		}()
	}
	wg.Wait()
	for i, p := range pods {
		require.NoError(t, errs[i], "DEL %s", p.name)
		e.assertGone(t, e.c, p, true)
	}
	assert.Empty(t, e.c.Pods())
	assert.Empty(t, e.podPorts())
	assert.Equal(t, e.baseDump, e.ofc.Dump())
}

// Both the fake bridge and its failing wrapper are podconfig.Bridges.
var (
	_ podconfig.Bridge = (*failingBridge)(nil)
	_ podconfig.Bridge = (*ovsdbtest.Fake)(nil)
)
