"""The models: the `Backend` interface, the `TokenIdBackend` protocol, the registry of model
ids, and one folder per backend family (each registers itself)."""
