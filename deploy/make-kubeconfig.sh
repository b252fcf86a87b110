#!/bin/sh
# Writes a kubeconfig for nodewall's systemd service from the nodewall-token
# Secret (deploy/token-secret.yaml). Run where kubectl talks to the cluster as an
# admin; copy the output to /etc/nodewall/kubeconfig (mode 0600, owner root) on
# each node.
#   usage: deploy/make-kubeconfig.sh [OUTPUT] [SERVER]
#   SERVER defaults to the server of kubectl's current context.
set -eu
out=${1:-kubeconfig}
server=${2:-$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')}
ns=nodewall
secret=nodewall-token
token=$(kubectl -n "$ns" get secret "$secret" -o jsonpath='{.data.token}' | base64 -d)
ca=$(kubectl -n "$ns" get secret "$secret" -o jsonpath='{.data.ca\.crt}')
if [ -z "$token" ] || [ -z "$ca" ]; then
  echo "make-kubeconfig: secret $ns/$secret has no token yet (apply deploy/rbac.yaml and deploy/token-secret.yaml first)" >&2
  exit 1
fi
umask 077
cat >"$out" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
  - name: cluster
    cluster:
      server: $server
      certificate-authority-data: $ca
users:
  - name: nodewall
    user:
      token: $token
contexts:
  - name: nodewall
    context: {cluster: cluster, user: nodewall}
current-context: nodewall
KUBECONFIG
echo "wrote $out (server $server); install it as /etc/nodewall/kubeconfig, mode 0600"
