"""A real Kubernetes control plane built from Go modules, for e2e tests and the demo."""
