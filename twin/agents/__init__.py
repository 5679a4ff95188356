"""Mesa agents: thin handles over model-owned numpy columns."""

from twin.agents.resident import Resident

__all__ = ["Resident"]
