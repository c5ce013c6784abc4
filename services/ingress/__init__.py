"""HTTP ingress: authenticated triggers in, flow status out (`python -m services.ingress`)."""
