package crdclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/ovs-cni/antrea/pkg/apis/crd/v1alpha1"
)

// apiServer stores one Traceflow and answers 409 to status writes of an
// older resourceVersion, 404 for any other name.
type apiServer struct {
	tf      v1alpha1.Traceflow
	methods []string
}

func (s *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.methods = append(s.methods, r.Method+" "+r.URL.Path)
	w.Header().Set("Content-Type", "application/json")
	status := func(code int, reason metav1.StatusReason) {
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
			Status: metav1.StatusFailure, Reason: reason, Code: int32(code)})
	}
	switch r.URL.Path {
	case "/apis/crd.antrea.io/v1alpha1/traceflows/tf":
		_ = json.NewEncoder(w).Encode(s.tf)
	case "/apis/crd.antrea.io/v1alpha1/traceflows/tf/status":
		var in v1alpha1.Traceflow
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || r.Method != http.MethodPut {
			status(http.StatusBadRequest, metav1.StatusReasonBadRequest)
			return
		}
		if in.ResourceVersion != s.tf.ResourceVersion {
			status(http.StatusConflict, metav1.StatusReasonConflict)
			return
		}
		s.tf.Status = in.Status
		s.tf.ResourceVersion += "1"
		_ = json.NewEncoder(w).Encode(s.tf)
	default:
		status(http.StatusNotFound, metav1.StatusReasonNotFound)
	}
}

func TestUpdateTraceflowStatus(t *testing.T) {
	api := &apiServer{tf: v1alpha1.Traceflow{ObjectMeta: metav1.ObjectMeta{Name: "tf", UID: "u1", ResourceVersion: "1"}}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	c, err := NewTraceflows(&rest.Config{Host: srv.URL})
	require.NoError(t, err)
	ctx := context.Background()

	calls := 0
	err = UpdateTraceflowStatus(ctx, c, "tf", "u1", func(st *v1alpha1.TraceflowStatus) bool {
		calls++
		if calls == 1 {
			api.tf.ResourceVersion = "2" // another writer got there first
		}
		st.Phase = v1alpha1.PhaseRunning
		return true
	})
	require.NoError(t, err)
	assert.Equal(t, 2, calls, "read again after the conflict")
	assert.Equal(t, v1alpha1.PhaseRunning, api.tf.Status.Phase)
	assert.Contains(t, api.methods, "PUT /apis/crd.antrea.io/v1alpha1/traceflows/tf/status")

	api.methods = nil
	require.NoError(t, UpdateTraceflowStatus(ctx, c, "tf", types.UID("u0"), func(*v1alpha1.TraceflowStatus) bool {
		t.Error("a recreated Traceflow is not changed")
		return true
	}))
	require.NoError(t, UpdateTraceflowStatus(ctx, c, "tf", "u1", func(*v1alpha1.TraceflowStatus) bool { return false }))
	assert.Equal(t, []string{"GET /apis/crd.antrea.io/v1alpha1/traceflows/tf", "GET /apis/crd.antrea.io/v1alpha1/traceflows/tf"}, api.methods,
		"nothing to write, nothing written")
	assert.NoError(t, UpdateTraceflowStatus(ctx, c, "gone", "u1", func(*v1alpha1.TraceflowStatus) bool { return true }),
		"a deleted Traceflow is no error")
}
