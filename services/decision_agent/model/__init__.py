"""The language-model port of the decision agent and its adapters.

`port.ModelPort` is what the AI layer calls; `bedrock.BedrockConverse` (Amazon Bedrock's
Converse API), `openai_compat.OpenAICompatibleChat` (any OpenAI-compatible chat server) and
`recorded.RecordedModel` (replays recorded answers) implement it. `gateway.ModelGateway`
wraps a port with what every endpoint needs: breaker, timeout, retries on throttling,
token budgets, the prompt cache and metrics. Import the adapters from their modules: boto3
and httpx load only when a backend is configured.
"""
