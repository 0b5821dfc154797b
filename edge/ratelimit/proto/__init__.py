"""Wire-compatible subset of Envoy's rate-limit protos and their generated code (`make gen`)."""
