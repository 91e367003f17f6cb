#!/usr/bin/env bash
# Shows a freshly started lab working: nodes, a Deployment spread over the
# nodes, the reachability matrix between its pods, and a Traceflow between
# two of them on different nodes.
set -euo pipefail
lab="$(cd "$(dirname "$0")/.." && pwd)/bin/antrea-lab"

echo "== nodes"
"$lab" kubectl -- get nodes -o wide
echo "== antrea, deployed from build/yamls/antrea.yml"
"$lab" kubectl -- get pods -n kube-system -l app=antrea -o wide
echo "== a Deployment of 4 pods"
"$lab" kubectl -- create namespace demo --dry-run=client -o yaml | "$lab" kubectl -- apply -f -
"$lab" kubectl -- apply -f - <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.52
        args: [serve-hostname]
        ports: [{containerPort: 80}]
        readinessProbe: {httpGet: {path: /, port: 80}, periodSeconds: 2}
YAML
"$lab" kubectl -- -n demo rollout status deployment/web --timeout=90s
"$lab" kubectl -- -n demo get pods -o wide
echo "== the bridge of node-1, as in the seed's walk-through"
"$lab" node-exec node-1 -- ovs-vsctl show
echo "== reachability between the demo pods on port 80 (. connected, X blocked)"
"$lab" matrix --namespaces demo --port 80
# Two pods on different nodes, if the scheduler spread them.
read -r src dst < <("$lab" kubectl -- -n demo get pods -o jsonpath='{range .items[*]}{.metadata.name} {.spec.nodeName}{"\n"}{end}' |
  awk '!seen[$2]++ {pods[n++]=$1} END {if (n > 1) print pods[0], pods[1]}')
if [[ -n "${dst:-}" ]]; then
  echo "== a Traceflow: a real packet from demo/$src to demo/$dst, hop by hop"
  "$lab" antctl -- traceflow -S "demo/$src" -D "demo/$dst" || true
fi
echo
echo "The lab stays up. Try: bin/antrea-lab status | bin/antrea-lab node-exec node-1 -- ip addr"
echo "Remove it with: make lab-down"
