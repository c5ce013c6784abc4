"""One line saying which language model the decision agent uses (for run summaries); no
import beyond the settings, so `revops` starts fast."""

from __future__ import annotations

from services.common.settings import Settings


def describe_model(settings: Settings) -> str:
    """One line for run summaries: which model writes what, or that none is used."""
    backend = settings.model_backend.strip().lower()
    if backend in ("", "none"):
        return (
            "language model: none (deterministic analysis only; "
            "REVOPS_MODEL_BACKEND=bedrock|openai|recorded adds call understanding and narratives)"
        )
    model = settings.model_inference_profile or settings.model_id or settings.model_recordings
    return (
        f"language model: {backend} {model} (call understanding and narratives; "
        "scores stay deterministic)"
    )
