"""The engine's one error type, importable without Spark."""


class EngineError(RuntimeError):
    """The engine setting asks for something this engine cannot do, or Spark is missing."""
