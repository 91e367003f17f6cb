package cniserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ovs-cni/antrea/pkg/agent/cniserver"
	"github.com/ovs-cni/antrea/pkg/agent/cniserver/cniservertest"
	cniv1 "github.com/ovs-cni/antrea/pkg/apis/cni/v1"
)

// TestCommandsAcrossVersions runs ADD, CHECK, DEL, GC and STATUS with every
// supported cniVersion: each command works from the version that introduced
// it, and the ADD result is encoded in the request's version.
func TestCommandsAcrossVersions(t *testing.T) {
	fake := &cniservertest.Fake{}
	c := startServer(t, fake, cniserver.Config{})
	for _, v := range cniv1.SupportedVersions {
		t.Run(v, func(t *testing.T) {
			id := "ctr-" + v
			resp := call(t, c, podCmdArgs(cniserver.CmdAdd, id, netConf(t, v, nil)))
			require.Nil(t, resp.Error)
			res, err := version.NewResult(v, resp.CniResult)
			require.NoError(t, err, "result %s", resp.CniResult)
			assert.Equal(t, v, res.Version())
			var raw map[string]any
			require.NoError(t, json.Unmarshal(resp.CniResult, &raw))
			assert.Equal(t, v, raw["cniVersion"])
			cur, err := current.NewResultFromResult(res)
			require.NoError(t, err)
			assert.Equal(t, "/var/run/netns/"+id, cur.Interfaces[0].Sandbox)

			// The runtime passes the ADD result back as prevResult.
			var prev map[string]any
			require.NoError(t, json.Unmarshal(resp.CniResult, &prev))
			checkResp := call(t, c, podCmdArgs(cniserver.CmdCheck, id, netConf(t, v, map[string]any{"prevResult": prev})))
			if v == "0.3.1" {
				assert.Equal(t, cniv1.CodeIncompatibleCNIVersion, code(checkResp))
				assert.Contains(t, checkResp.Error.Msg, "does not allow CHECK")
			} else {
				assert.Nil(t, checkResp.Error)
			}

			gcConf := netConf(t, v, map[string]any{"cni.dev/valid-attachments": []map[string]string{{"containerID": id, "ifname": "eth0"}}})
			gcResp := call(t, c, &cniv1.CmdArgs{Command: cniserver.CmdGC, NetworkConfig: gcConf})
			statusResp := call(t, c, &cniv1.CmdArgs{Command: cniserver.CmdStatus, NetworkConfig: netConf(t, v, nil)})
			if v == "1.1.0" {
				assert.Nil(t, gcResp.Error)
				assert.Nil(t, statusResp.Error)
				calls := fake.GCCalls()
				assert.Equal(t, []cniserver.Attachment{{ContainerID: id, IfName: "eth0"}}, calls[len(calls)-1])
				assert.True(t, fake.Attached(cniserver.Attachment{ContainerID: id, IfName: "eth0"}))
			} else {
				assert.Equal(t, cniv1.CodeIncompatibleCNIVersion, code(gcResp))
				assert.Equal(t, cniv1.CodeIncompatibleCNIVersion, code(statusResp))
			}

			delResp := call(t, c, podCmdArgs(cniserver.CmdDel, id, netConf(t, v, nil)))
			assert.Nil(t, delResp.Error)
			assert.False(t, fake.Attached(cniserver.Attachment{ContainerID: id, IfName: "eth0"}))
			assert.Empty(t, delResp.CniResult)
		})
	}
}

// TestPodRequestFields checks what the configurator receives.
func TestPodRequestFields(t *testing.T) {
	fake := &cniservertest.Fake{}
	c := startServer(t, fake, cniserver.Config{})
	conf := netConf(t, "1.0.0", nil)
	resp := call(t, c, podCmdArgs(cniserver.CmdAdd, "abc", conf))
	require.Nil(t, resp.Error)
	reqs := fake.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, cniserver.PodRequest{
		Command: cniserver.CmdAdd, ContainerID: "abc", Netns: "/var/run/netns/abc", IfName: "eth0",
		PodNamespace: "default", PodName: "web-0", PodUID: "uid-1", InfraContainerID: "ctr1",
		Args: map[string]string{"IgnoreUnknown": "1", "K8S_POD_NAMESPACE": "default", "K8S_POD_NAME": "web-0",
			"K8S_POD_UID": "uid-1", "K8S_POD_INFRA_CONTAINER_ID": "ctr1"},
		Path: []string{"/opt/cni/bin"}, CNIVersion: "1.0.0", NetworkName: "antrea", NetConf: conf,
	}, reqs[0])

	// DEL needs neither netns nor the pod's name.
	del := podCmdArgs(cniserver.CmdDel, "abc", conf)
	del.Netns, del.Args = "", ""
	resp = call(t, c, del)
	require.Nil(t, resp.Error)
	reqs = fake.Requests()
	assert.Empty(t, reqs[1].Netns)
	assert.Empty(t, reqs[1].PodName)
}

// TestConcurrency checks that different containers run in parallel and
// that operations on one container never overlap.
func TestConcurrency(t *testing.T) {
	const n, delay = 6, 250 * time.Millisecond
	tests := []struct {
		name         string
		containerID  func(i int) string
		wantMaxPerID int
		wantMaxAll   int
		minElapsed   time.Duration
		maxElapsed   time.Duration
	}{
		{"different containers in parallel", func(i int) string { return fmt.Sprintf("ctr-%d", i) }, 1, n, delay, (n - 1) * delay},
		{"same container serialized", func(int) string { return "ctr-same" }, 1, 1, n * delay, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &cniservertest.Fake{Delay: delay}
			c := startServer(t, fake, cniserver.Config{})
			conf := netConf(t, "1.0.0", nil)
			start := time.Now()
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cmd := cniserver.CmdAdd
					if i%2 == 1 {
						cmd = cniserver.CmdDel
					}
					resp := call(t, c, podCmdArgs(cmd, tt.containerID(i), conf))
					assert.Nil(t, resp.Error)
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			perID, all := fake.MaxConcurrency()
			assert.Equal(t, tt.wantMaxPerID, perID)
			assert.Equal(t, tt.wantMaxAll, all)
			assert.GreaterOrEqual(t, elapsed, tt.minElapsed)
			if tt.maxElapsed > 0 {
				assert.Less(t, elapsed, tt.maxElapsed)
			}
		})
	}
}

// TestGCExcludesOperations checks that GC waits for a running ADD: had it
// not, the ADD would finish after GC and its attachment would survive.
func TestGCExcludesOperations(t *testing.T) {
	fake := &cniservertest.Fake{Delay: 200 * time.Millisecond}
	c := startServer(t, fake, cniserver.Config{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		call(t, c, podCmdArgs(cniserver.CmdAdd, "c1", netConf(t, "1.1.0", nil)))
	}()
	require.Eventually(t, func() bool { return len(fake.Requests()) == 1 }, 2*time.Second, time.Millisecond, "ADD running")
	resp := call(t, c, &cniv1.CmdArgs{Command: cniserver.CmdGC, NetworkConfig: netConf(t, "1.1.0", nil)})
	require.Nil(t, resp.Error)
	wg.Wait()
	assert.False(t, fake.Attached(cniserver.Attachment{ContainerID: "c1", IfName: "eth0"}), "GC ran after the ADD")
}

// TestIdempotentAdd checks that a repeated ADD answers the same result.
func TestIdempotentAdd(t *testing.T) {
	c := startServer(t, &cniservertest.Fake{}, cniserver.Config{})
	conf := netConf(t, "1.0.0", nil)
	first := call(t, c, podCmdArgs(cniserver.CmdAdd, "c1", conf))
	second := call(t, c, podCmdArgs(cniserver.CmdAdd, "c1", conf))
	require.Nil(t, first.Error)
	assert.JSONEq(t, string(first.CniResult), string(second.CniResult))
}

func TestObserve(t *testing.T) {
	var mu sync.Mutex
	var got []cniserver.Observation
	c := startServer(t, &cniservertest.Fake{Delay: 20 * time.Millisecond}, cniserver.Config{Observe: func(o cniserver.Observation) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, o)
	}})
	call(t, c, podCmdArgs(cniserver.CmdAdd, "c1", netConf(t, "1.0.0", nil)))
	call(t, c, podCmdArgs(cniserver.CmdAdd, "c2", netConf(t, "9.9.9", nil)))
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, got, 2)
	assert.Equal(t, cniserver.CmdAdd, got[0].Command)
	assert.Equal(t, "c1", got[0].ContainerID)
	assert.Zero(t, got[0].Code)
	assert.GreaterOrEqual(t, got[0].Duration, 20*time.Millisecond)
	assert.Equal(t, cniv1.CodeIncompatibleCNIVersion, got[1].Code)
}

// TestOperationOutlivesClient checks that an ADD goes on when the plugin
// gives up, so that the runtime's retry is answered from state.
func TestOperationOutlivesClient(t *testing.T) {
	fake := &cniservertest.Fake{Delay: 300 * time.Millisecond}
	c := startServer(t, fake, cniserver.Config{})
	conf := netConf(t, "1.0.0", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.CmdAdd(ctx, &cniv1.CmdRequest{CmdArgs: podCmdArgs(cniserver.CmdAdd, "c1", conf)})
	require.Error(t, err, "the client gave up")
	attachment := cniserver.Attachment{ContainerID: "c1", IfName: "eth0"}
	assert.False(t, fake.Attached(attachment))
	assert.Eventually(t, func() bool { return fake.Attached(attachment) }, 2*time.Second, 10*time.Millisecond)
}
