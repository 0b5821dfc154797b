"""The REST edge: renders the Envoy bootstrap that transcodes REST to gRPC (see edge/README.md)."""
