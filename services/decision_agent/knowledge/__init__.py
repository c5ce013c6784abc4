"""The knowledge the narrative prompts consult: business rules, ICP and playbooks.

`local_index.LocalKnowledgeIndex` (SQLite FTS5, BM25 ranking) indexes the project's rule
files and the top-level `knowledge/` folder of markdown playbooks; `bedrock_kb.
BedrockKnowledgeBase` asks Amazon Bedrock Knowledge Bases' Retrieve API in production.
Both implement `port.Retriever`.
"""
