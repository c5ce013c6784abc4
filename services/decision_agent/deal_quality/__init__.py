"""Deal-quality analysis: rubrics as data, explainable scores, risks and recommendations."""
