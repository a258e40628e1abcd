"""Console pages: one module per section, each with a ``router`` (an ``APIRouter`` without a
prefix: ``api.console.router`` adds ``/console``). See :mod:`api.console` for an example."""
