"""Adapters: learning for the agent frameworks people already use.

Each adapter drives the typed turn (``machine.abegin`` → the framework answers with the turn's
context and tools → ``turn.afinish``) from inside its framework's own extension point, and is
an optional extra so the base install stays small:

- :mod:`learning_machines.adapters.pydantic_ai` — ``LearningCapability``, a capability for any
  pydantic-ai ``Agent`` (our own :class:`~learning_machines.Agent` is built on it).
- :mod:`learning_machines.adapters.langchain` — ``LearningMiddleware`` for LangChain 1.x
  ``create_agent`` (extra ``langchain``).
- :mod:`learning_machines.adapters.langgraph_store` — ``LearningMachinesStore``, a LangGraph
  ``BaseStore`` over our db (extra ``langchain``).
- :mod:`learning_machines.adapters.openai_agents` — ``LearningSession`` for the OpenAI Agents
  SDK: session memory, the turn's tools and dynamic instructions (extra ``openai-agents``).

Importing this package imports no framework; import the adapter's module.
"""

from ._scope import TurnScope

__all__ = ["TurnScope"]
