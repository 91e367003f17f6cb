package apiserver

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/klog/v2"

	"github.com/ovs-cni/antrea/pkg/apis/controlplane/v1beta1"
	"github.com/ovs-cni/antrea/pkg/controller/networkpolicy"
)

// kind describes how one resource is served from a store of internal
// objects of type T.
type kind[T any] struct {
	resource   schema.GroupResource
	singular   string
	namespaced bool
	newObj     func() runtime.Object
	newList    func() runtime.Object
	// name and namespace of an internal object.
	name      func(*T) string
	namespace func(*T) string
	span      func(*T) []string
	// full converts an object as node sees it; patch returns the change
	// from old to cur as node sees it, nil when node sees none.
	full  func(obj *T, node string, rev uint64) runtime.Object
	patch func(old, cur *T, node string, rev uint64) runtime.Object
	// setItems fills a list object.
	setItems func(list runtime.Object, items []runtime.Object, rev uint64)
	table    func(obj runtime.Object) []any
	columns  []metav1.TableColumnDefinition
}

// storage serves one resource read-only: get, list and watch, with the
// nodeName field selector.
type storage[T any] struct {
	kind    kind[T]
	store   networkpolicy.Store[T]
	history *history[T]
	// epoch is added to the store's revisions to make resourceVersions:
	// the start time of the process, so that a resourceVersion of an
	// earlier run of the controller is never taken for one of this run.
	epoch uint64
	// maxQueue bounds the events queued for one watcher; a watcher that
	// falls that far behind is closed and resumes from its last revision.
	maxQueue int
}

var (
	_ rest.Storage              = (*storage[int])(nil)
	_ rest.Scoper               = (*storage[int])(nil)
	_ rest.Getter               = (*storage[int])(nil)
	_ rest.Lister               = (*storage[int])(nil)
	_ rest.Watcher              = (*storage[int])(nil)
	_ rest.SingularNameProvider = (*storage[int])(nil)
)

// processEpoch is the epoch of every resource served by this process.
var processEpoch = uint64(time.Now().UnixNano())

// historySize is how many changes each resource keeps for watches that
// resume from a resourceVersion.
const historySize = 50000

func newStorage[T any](k kind[T], store networkpolicy.Store[T]) *storage[T] {
	return &storage[T]{kind: k, store: store, history: newHistory(store, historySize), epoch: processEpoch, maxQueue: 1 << 17}
}

func (s *storage[T]) New() runtime.Object     { return s.kind.newObj() }
func (s *storage[T]) NewList() runtime.Object { return s.kind.newList() }
func (s *storage[T]) NamespaceScoped() bool   { return s.kind.namespaced }
func (s *storage[T]) GetSingularName() string { return s.kind.singular }
func (s *storage[T]) Destroy()                { s.history.stop() }
func (s *storage[T]) storeKey(ns, name string) string {
	if s.kind.namespaced {
		return ns + "/" + name
	}
	return name
}

// Get returns one object, as the cluster sees it.
func (s *storage[T]) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	ns, _ := genericapirequest.NamespaceFrom(ctx)
	obj, ok := s.store.Get(s.storeKey(ns, name))
	if !ok {
		return nil, apierrors.NewNotFound(s.kind.resource, name)
	}
	return s.kind.full(obj, "", 0), nil
}

// selection is what a list or watch asks for.
type selection struct {
	node      string
	name      string
	namespace string
}

func (s *storage[T]) selection(ctx context.Context, opts *metainternalversion.ListOptions) (selection, error) {
	var sel selection
	sel.namespace, _ = genericapirequest.NamespaceFrom(ctx)
	if opts == nil {
		return sel, nil
	}
	if opts.LabelSelector != nil && !opts.LabelSelector.Empty() {
		return sel, apierrors.NewBadRequest(fmt.Sprintf("%s: label selectors are not supported", s.kind.resource))
	}
	if opts.FieldSelector == nil {
		return sel, nil
	}
	for _, r := range opts.FieldSelector.Requirements() {
		if r.Operator != "=" && r.Operator != "==" {
			return sel, apierrors.NewBadRequest(fmt.Sprintf("field selector %q: only = is supported", r.Field))
		}
		switch r.Field {
		case v1beta1.NodeNameField:
			sel.node = r.Value
		case "metadata.name":
			sel.name = r.Value
		case "metadata.namespace":
			if sel.namespace != "" && sel.namespace != r.Value {
				return sel, apierrors.NewBadRequest("field selector metadata.namespace differs from the request's namespace")
			}
			sel.namespace = r.Value
		default:
			return sel, apierrors.NewBadRequest(fmt.Sprintf("field selector %q is not supported (supported: %s, metadata.name, metadata.namespace)", r.Field, v1beta1.NodeNameField))
		}
	}
	return sel, nil
}

func (s *storage[T]) selects(sel selection, obj *T) bool {
	if sel.name != "" && s.kind.name(obj) != sel.name {
		return false
	}
	return sel.namespace == "" || s.kind.namespace(obj) == sel.namespace
}

// inSpan reports whether node sees obj at all.
func (s *storage[T]) inSpan(obj *T, node string) bool {
	if obj == nil {
		return false
	}
	if node == "" {
		return true
	}
	for _, n := range s.kind.span(obj) {
		if n == node {
			return true
		}
	}
	return false
}

// List returns the objects selected, with the revision they reflect.
func (s *storage[T]) List(ctx context.Context, opts *metainternalversion.ListOptions) (runtime.Object, error) {
	sel, err := s.selection(ctx, opts)
	if err != nil {
		return nil, err
	}
	initial, rev, stop := s.store.Watch(sel.node, func(networkpolicy.Event[T]) {})
	stop()
	items := make([]runtime.Object, 0, len(initial))
	for _, obj := range initial {
		if s.selects(sel, obj) {
			items = append(items, s.kind.full(obj, sel.node, 0))
		}
	}
	list := s.kind.newList()
	s.kind.setItems(list, items, s.epoch+rev)
	return list, nil
}

// Watch streams the changes of the objects selected. Without a
// resourceVersion (or "0") it starts with the current objects as ADDED
// events; with one it resumes right after it, or fails with 410 Gone when
// that revision is too old.
func (s *storage[T]) Watch(ctx context.Context, opts *metainternalversion.ListOptions) (watch.Interface, error) {
	sel, err := s.selection(ctx, opts)
	if err != nil {
		return nil, err
	}
	var from uint64
	fromSet := false
	if opts != nil && opts.ResourceVersion != "" && opts.ResourceVersion != "0" {
		v, err := strconv.ParseUint(opts.ResourceVersion, 10, 64)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("resourceVersion %q: not a number", opts.ResourceVersion))
		}
		if v < s.epoch {
			return nil, apierrors.NewResourceExpired(fmt.Sprintf("resourceVersion %d is from an earlier run of the controller", v))
		}
		from, fromSet = v-s.epoch, true
	}
	w := &watcher[T]{s: s, sel: sel, result: make(chan watch.Event, 100), done: make(chan struct{}), wake: make(chan struct{}, 1)}
	initial, rev, stop := s.store.Watch(sel.node, w.enqueue)
	w.stopStore = stop
	switch {
	case !fromSet:
		for _, obj := range initial {
			if s.selects(sel, obj) {
				w.prefix = append(w.prefix, watch.Event{Type: watch.Added, Object: s.kind.full(obj, sel.node, s.epoch+rev)})
			}
		}
	case from > rev:
		stop()
		return nil, apierrors.NewResourceExpired(fmt.Sprintf("resourceVersion %d is ahead of this run of the controller (now %d)", s.epoch+from, s.epoch+rev))
	case from < rev:
		changes, ok := s.history.between(from, rev)
		if !ok {
			stop()
			return nil, apierrors.NewResourceExpired(fmt.Sprintf("resourceVersion %d is too old (now %d)", s.epoch+from, s.epoch+rev))
		}
		for _, c := range changes {
			if e, ok := w.event(c); ok {
				w.prefix = append(w.prefix, e)
			}
		}
	}
	go w.run(ctx)
	return w, nil
}

// watcher is one watch: events from the store are queued by enqueue
// (called with the store locked, so it never blocks) and converted and
// sent by run.
type watcher[T any] struct {
	s      *storage[T]
	sel    selection
	prefix []watch.Event

	mu       sync.Mutex
	queue    []change[T]
	overflow bool
	wake     chan struct{}

	result    chan watch.Event
	done      chan struct{}
	stopOnce  sync.Once
	stopStore func()
}

func (w *watcher[T]) enqueue(e networkpolicy.Event[T]) {
	w.mu.Lock()
	if len(w.queue) >= w.s.maxQueue {
		w.overflow = true
	} else {
		w.queue = append(w.queue, changeOf(e))
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// event is the watch event the watcher's node sees for a change.
func (w *watcher[T]) event(c change[T]) (watch.Event, bool) {
	node := w.sel.node
	had := w.s.inSpan(c.old, node) && w.s.selects(w.sel, c.old)
	has := w.s.inSpan(c.cur, node) && w.s.selects(w.sel, c.cur)
	switch {
	case had && has:
		obj := w.s.kind.patch(c.old, c.cur, node, w.s.epoch+c.rev)
		if obj == nil {
			return watch.Event{}, false
		}
		return watch.Event{Type: watch.Modified, Object: obj}, true
	case has:
		return watch.Event{Type: watch.Added, Object: w.s.kind.full(c.cur, node, w.s.epoch+c.rev)}, true
	case had:
		return watch.Event{Type: watch.Deleted, Object: w.s.kind.full(c.old, node, w.s.epoch+c.rev)}, true
	}
	return watch.Event{}, false
}

func (w *watcher[T]) send(e watch.Event) bool {
	select {
	case w.result <- e:
		return true
	case <-w.done:
		return false
	}
}

func (w *watcher[T]) run(ctx context.Context) {
	defer close(w.result)
	defer w.Stop()
	for _, e := range w.prefix {
		if !w.send(e) {
			return
		}
	}
	w.prefix = nil
	for {
		w.mu.Lock()
		batch, overflow := w.queue, w.overflow
		w.queue = nil
		w.mu.Unlock()
		for _, c := range batch {
			if e, ok := w.event(c); ok && !w.send(e) {
				return
			}
		}
		if overflow {
			klog.InfoS("Closing a watch that fell behind", "resource", w.s.kind.resource, "node", w.sel.node)
			return
		}
		select {
		case <-w.wake:
		case <-w.done:
			return
		case <-ctx.Done():
			return
		}
	}
}

// Stop ends the watch.
func (w *watcher[T]) Stop() {
	w.stopOnce.Do(func() {
		w.stopStore()
		close(w.done)
	})
}

// ResultChan is where events arrive.
func (w *watcher[T]) ResultChan() <-chan watch.Event { return w.result }
