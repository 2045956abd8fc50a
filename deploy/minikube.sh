#!/usr/bin/env bash
# boxoffice on minikube: the cluster's add-ons, the image built inside minikube, then the minikube overlay.
# PostgreSQL, Kafka, MinIO and Mailpit run in the namespace (overlays/minikube/dependencies.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."

minikube status >/dev/null 2>&1 || minikube start --cpus=4 --memory=8g --addons=ingress,metrics-server
helm repo add kedacore https://kedacore.github.io/charts >/dev/null
helm repo add istio https://istio-release.storage.googleapis.com/charts >/dev/null
helm repo add prometheus-community https://prometheus-community.github.io/helm-charts >/dev/null
helm repo update >/dev/null
helm upgrade --install keda kedacore/keda -n keda --create-namespace --wait
helm upgrade --install istio-base istio/base -n istio-system --create-namespace --wait
helm upgrade --install istiod istio/istiod -n istio-system --wait
helm upgrade --install monitoring prometheus-community/kube-prometheus-stack -n monitoring --create-namespace --wait

minikube image build -t boxoffice:dev -f deploy/Dockerfile .
kubectl apply -k deploy/k8s/overlays/minikube
kubectl -n boxoffice get secret boxoffice-secrets >/dev/null 2>&1 || kubectl -n boxoffice create secret generic boxoffice-secrets \
  --from-literal=secret-key="$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
kubectl -n boxoffice get secret boxoffice-s3 >/dev/null 2>&1 || kubectl -n boxoffice create secret generic boxoffice-s3 \
  --from-literal=access-key-id=boxoffice \
  --from-literal=secret-access-key="$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
# The development PostgreSQL trusts the namespace (dependencies.yaml): the URLs carry no password.
kubectl -n boxoffice get secret boxoffice-databases >/dev/null 2>&1 || kubectl -n boxoffice create secret generic boxoffice-databases \
  $(for s in identity catalog booking payments tickets analytics tracking music; do
      printf -- '--from-literal=%s=postgresql+asyncpg://boxoffice@postgres:5432/%s ' "$s" "$s"
    done)
kubectl -n boxoffice rollout status deployment --timeout=300s
echo "boxoffice: https://boxoffice.minikube (add \"$(minikube ip) boxoffice.minikube\" to /etc/hosts)"
