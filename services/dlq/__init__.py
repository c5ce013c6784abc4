"""Dead-letter tooling: list, show and replay `<topic>.dlq` records (`revops dlq ...`)."""
