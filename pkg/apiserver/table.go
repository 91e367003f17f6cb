package apiserver

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// ConvertToTable renders objects for kubectl get.
func (s *storage[T]) ConvertToTable(_ context.Context, obj runtime.Object, _ runtime.Object) (*metav1.Table, error) {
	t := &metav1.Table{ColumnDefinitions: append([]metav1.TableColumnDefinition{
		{Name: "Name", Type: "string", Format: "name", Description: "Name of the object."},
	}, s.kind.columns...)}
	var items []runtime.Object
	if meta.IsListType(obj) {
		var err error
		if items, err = meta.ExtractList(obj); err != nil {
			return nil, fmt.Errorf("render %s: %w", s.kind.resource, err)
		}
		if l, err := meta.ListAccessor(obj); err == nil {
			t.ResourceVersion = l.GetResourceVersion()
		}
	} else {
		items = []runtime.Object{obj}
	}
	for _, item := range items {
		m, err := meta.Accessor(item)
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", s.kind.resource, err)
		}
		t.Rows = append(t.Rows, metav1.TableRow{
			Cells:  append([]any{m.GetName()}, s.kind.table(item)...),
			Object: runtime.RawExtension{Object: item},
		})
	}
	return t, nil
}
