"""The fault events of the test case, made from the faults of :class:`~zmqprocesstest.FaultLink`.

A fault is written once, as a method of the link marked :func:`~zmqprocesstest.faults.link.fault`.
For each, :class:`FaultEvents` gets an event of the same name (marked ``@event``, as the
hand-written events are) whose first argument is the link: ``yield ('drop', link, 2,
'to_client')`` calls ``link.drop(2, 'to_client')``. Its signature is the fault's with
*link* in front, and its docstring the fault's first paragraph, so the loop's messages
about bad arguments, the events table of the docs and :func:`help` show the fault's own
parameters.
"""
from __future__ import annotations

import inspect
import typing
from typing import Any, Callable, List, Tuple

from ..loop import BadArgument, event
from .link import FAULT_ATTR, FaultLink

__unittest = True
__tracebackhide__ = True

__all__ = ["FaultEvents", "faults_of"]


def faults_of(cls: type) -> List[Tuple[str, Callable[..., Any]]]:
    """``[(name, method), ...]``: the methods of *cls* marked as faults, in the order they are defined."""
    return [(name, value) for name, value in vars(cls).items() if getattr(value, FAULT_ATTR, False)]


def _link_arg(link: Any) -> FaultLink:
    if not isinstance(link, FaultLink):
        raise BadArgument(f"expected a FaultLink (made by self.fault_link() or FaultLink()), got {link!r}")
    return link


def _first_paragraph(doc: str) -> str:
    paragraph = inspect.cleandoc(doc).split("\n\n")[0]
    return paragraph[:1].lower() + paragraph[1:]


def _fault_event(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """The event that applies the fault *method* (a function of :class:`FaultLink`) to its first argument."""
    hints = {key: None if hint is type(None) else hint for key, hint in typing.get_type_hints(method).items()}
    params = list(inspect.signature(method).parameters.values())
    link = inspect.Parameter("link", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=FaultLink)
    params = [params[0], link] + [p.replace(annotation=hints.get(p.name, p.annotation)) for p in params[1:]]

    def apply(self: Any, link: Any, *args: Any, **kwargs: Any) -> Any:
        return method(_link_arg(link), *args, **kwargs)

    apply.__name__ = name
    apply.__qualname__ = f"FaultEvents.{name}"
    apply.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        params, return_annotation=hints.get("return", inspect.Signature.empty))
    apply.__annotations__ = {"link": FaultLink, **hints}
    apply.__doc__ = (f"Event: on *link*, {_first_paragraph(method.__doc__ or name)}\n\n"
                     f"The fault :meth:`FaultLink.{name} <zmqprocesstest.FaultLink.{name}>` applied to *link* "
                     f"(a :class:`~zmqprocesstest.FaultLink`): ``yield ('{name}', link, ...)``.")
    apply.__wrapped__ = method  # type: ignore[attr-defined]  # its source: where the docs list it
    return event(apply)


class FaultEvents:
    """The fault events, as methods of the test case: each applies one fault to a :class:`~zmqprocesstest.FaultLink`.

    ``yield ('partition', link)`` ... ``yield ('heal', link)``; they may also be called
    directly (``self.partition(link)``). One event per fault of the link, made from it.
    """


for _name, _method in faults_of(FaultLink):
    setattr(FaultEvents, _name, _fault_event(_name, _method))
del _name, _method
