"""`revops eval conversations`: score conversation extractors on labelled call excerpts."""
