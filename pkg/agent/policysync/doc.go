// Package policysync keeps this node's copy of the controller's
// NetworkPolicy objects (controlplane.antrea.io/v1beta1, narrowed to the
// node's span by the nodeName field selector) and realizes them in OVS.
//
// Each of the three resources has its own list-then-watch loop
// ([resourceSync]): a list replaces the resource's objects in the [Cache],
// then a watch from the list's resourceVersion applies ADDED, MODIFIED
// (full objects for NetworkPolicies, member patches for groups) and
// DELETED events; a watch that ends resumes from the last
// resourceVersion seen, and one that answers 410 Gone (a controller
// restart, or a node that fell too far behind) lists again. Nothing is
// removed on a disconnect: the cache keeps the last known objects and the
// flows stay installed until the controller says otherwise.
//
// The [Controller] realizes the cache through the networkpolicy
// Reconciler once all three resources have been listed, and after that on
// every change, coalescing changes that arrive while a realization runs.
package policysync
