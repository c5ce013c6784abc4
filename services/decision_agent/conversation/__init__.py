"""Conversation intelligence over customer calls (Extractor Protocol + lexicon implementation)."""

from services.decision_agent.conversation.extractor import (
    ConversationSignals,
    Extractor,
    Mention,
    MentionKind,
    StakeholderPresence,
)
from services.decision_agent.conversation.lexicon import DEFAULT_LEXICON_PATH, LexiconExtractor

__all__ = [
    "DEFAULT_LEXICON_PATH",
    "ConversationSignals",
    "Extractor",
    "LexiconExtractor",
    "Mention",
    "MentionKind",
    "StakeholderPresence",
]
