"""Deployment artefacts; `deploy.tools` holds the generators the deploy tests import."""
