"""The app's registrations, read through ``FunctionApp.get_functions()`` the way the host indexes them,
and the one place a user function is called (with its trigger value, ``context`` and ``Out``
parameters), so HTTP, queue and timer triggers all invoke functions alike."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import re
import sys
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import azure.functions as func

logger = logging.getLogger(__name__)

T = TypeVar("T")
SUPPORTED_TRIGGERS = ("httpTrigger", "queueTrigger", "timerTrigger")
# The host's rule for function names (Utility.ValidateName), ASCII only; "host" is reserved.
FUNCTION_NAME = re.compile(r"(?!host$)[A-Za-z][A-Za-z0-9_\-]{0,127}", re.IGNORECASE)


class Out(func.Out[T], Generic[T]):
    """A plain ``func.Out``: the worker gives one for every named output binding."""

    def __init__(self) -> None:
        self._value: T | None = None

    def set(self, val: T) -> None:
        self._value = val

    def get(self) -> T:
        return self._value  # type: ignore[return-value]


class Context(func.Context):
    """The ``context`` argument a function may declare (invocation id, function name)."""

    _local = threading.local

    def __init__(self, function_name: str, function_directory: str) -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._function_directory = function_directory

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> type[threading.local]:
        return self._local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None


def _plain(value: Any) -> Any:
    """Binding dictionaries hold enums (methods, auth level); compare them as their values."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return getattr(value, "value", value)


@dataclass
class FunctionInfo:
    """One indexed function: its trigger binding, its outputs, and how to call it."""

    name: str
    trigger: dict[str, Any]
    bindings: list[dict[str, Any]]
    user_function: Callable[..., Any]
    directory: str
    parameters: list[str] = field(default_factory=list)
    timeout: float | None = None  # host.json functionTimeout (None: unbounded)

    @property
    def trigger_type(self) -> str:
        return str(self.trigger.get("type"))

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.user_function)

    @property
    def output_names(self) -> list[str]:
        return [
            b["name"]
            for b in self.bindings
            if b is not self.trigger and str(_plain(b.get("direction"))) in ("1", "OUT") and b.get("name") != "$return"
        ]

    @property
    def has_return_binding(self) -> bool:
        return any(b.get("name") == "$return" for b in self.bindings if b is not self.trigger)

    def http_output_name(self) -> str | None:
        for binding in self.bindings:
            if binding.get("type") == "http":
                return str(binding.get("name"))
        return None

    def _arguments(self, trigger_value: Any) -> tuple[dict[str, Any], dict[str, Out[Any]]]:
        outs: dict[str, Out[Any]] = {name: Out() for name in self.output_names}
        kwargs: dict[str, Any] = {}
        for parameter in self.parameters:
            if parameter == self.trigger.get("name"):
                kwargs[parameter] = trigger_value
            elif parameter in outs:
                kwargs[parameter] = outs[parameter]
            elif parameter == "context":
                kwargs[parameter] = Context(self.name, self.directory)
        return kwargs, outs

    async def invoke(self, trigger_value: Any, executor: Executor) -> tuple[Any, dict[str, Out[Any]]]:
        """Call the user function: awaited when async, in the thread pool when not (as the
        Python worker does), so a slow sync function never blocks the event loop.

        Fails, as it fails under the host, when the function runs past ``functionTimeout``
        (``FunctionTimeout``; a sync function's thread cannot be stopped and is abandoned, where
        the host would restart the worker) or when a function without a ``$return`` binding
        returns a value (a queue or timer function returning something)."""
        kwargs, outs = self._arguments(trigger_value)
        if self.is_async:
            call = self.user_function(**kwargs)
        else:
            loop = asyncio.get_running_loop()
            call = loop.run_in_executor(executor, lambda: self.user_function(**kwargs))
        try:
            result = await asyncio.wait_for(call, self.timeout) if self.timeout is not None else await call
        except TimeoutError:
            raise FunctionTimeout(
                f"Timeout value of {self.timeout:g} s (functionTimeout) exceeded by function {self.name!r}"
            ) from None
        if result is not None and self.trigger_type != "httpTrigger" and not self.has_return_binding:
            raise TypeError(
                f"function {self.name!r} returned a {type(result).__name__} but has no $return output binding; "
                "the Python worker fails such an invocation"
            )
        return result, outs


class FunctionTimeout(Exception):
    """An invocation ran past host.json's ``functionTimeout``."""


def index_functions(app: Any, directory: str = "") -> list[FunctionInfo]:
    """Read the app's registrations; bindings devhost cannot provide are reported, not hidden."""
    functions: list[FunctionInfo] = []
    names: set[str] = set()
    for function in app.get_functions():
        name = function.get_function_name()
        if not FUNCTION_NAME.fullmatch(name):
            raise ValueError(
                f"{name!r} is not a valid function name (a letter, then up to 127 letters, digits, '_' or '-'; not 'host'); "
                "the host refuses it too"
            )
        if name.upper() in names:
            raise ValueError(f"two functions are named {name!r}; the host refuses that too")
        names.add(name.upper())
        bindings = [{k: _plain(v) for k, v in b.get_dict_repr().items()} for b in function.get_bindings()]
        trigger = next((b for b in bindings if str(b.get("type", "")).endswith("Trigger")), None)
        if trigger is None:
            raise ValueError(f"function {name!r} has no trigger binding")
        user_function = function.get_user_function()
        try:
            parameters = list(inspect.signature(user_function).parameters)
        except (TypeError, ValueError):
            parameters = [str(trigger.get("name"))]
        info = FunctionInfo(name, trigger, bindings, user_function, directory, parameters)
        if info.trigger_type not in SUPPORTED_TRIGGERS:
            logger.warning("function %s: devhost does not run %s triggers; it is skipped", name, info.trigger_type)
        for binding in bindings:
            if binding is trigger or binding.get("type") == "http":
                continue
            logger.warning(
                "function %s: devhost does not provide %s bindings (%s); the function gets an empty Out or nothing",
                name,
                binding.get("type"),
                binding.get("name"),
            )
        functions.append(info)
    return functions


def load_app(root: Path, spec: str = "function_app:app") -> Any:
    """Import ``module:attribute`` with the app folder first on ``sys.path`` (like the worker)."""
    module_name, _, attribute = spec.partition(":")
    attribute = attribute or "app"
    root_text = str(Path(root).resolve())
    if root_text not in sys.path:
        sys.path.insert(0, root_text)
    module = importlib.import_module(module_name)
    app = module
    for part in attribute.split("."):
        app = getattr(app, part)
    if not hasattr(app, "get_functions"):
        raise TypeError(f"{spec} is not a FunctionApp (no get_functions())")
    return app
