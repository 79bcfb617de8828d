"""Every public function, class and method has a valid numpydoc docstring.

The public API is the ``__all__`` of the modules in ``MODULES``.  From it the
test collects every function and class (constants, dicts, tuples and modules
are skipped), deduplicated by identity, and every public method, property and
cached property that a public class or one of its package-defined base classes
defines (members that dataclass / namedtuple / Exception machinery adds, and
those inherited from builtins, are not collected).  Each object is validated by
``numpydoc.validate.validate`` under its defining path (``obj.__module__`` and
``obj.__qualname__``), one test per object, with the checks in ``CHECKS``.

Two special cases:

* A compiled kernel in ``__all__`` (a :class:`plrnn_numba.config.LazyKernel`,
  or a numba dispatcher) is validated through the Python function it compiles
  (``.py_func``): the wrapper's own signature is ``(*args)``, while its
  docstring (copied from the function) documents the function's parameters.
* A method or property that overrides a documented member of a package base
  class without a docstring of its own inherits that docstring (as
  ``inspect.getdoc`` and Sphinx autodoc do); it is validated with the inherited
  text against its own signature, so an override whose parameters differ must
  be documented itself.

Run: ``python -m pytest -q tests/test_docstrings.py``.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import warnings

import pytest

numpydoc_validate = pytest.importorskip("numpydoc.validate")

MODULES = (
    "plrnn_numba",
    "plrnn_numba.models",
    "plrnn_numba.bptt",
    "plrnn_numba.forcing",
    "plrnn_numba.readouts",
    "plrnn_numba.training",
    "plrnn_numba.optim",
    "plrnn_numba.dynamics",
    "plrnn_numba.ghost",
    "plrnn_numba.sweep",
    "plrnn_numba.io",
    "plrnn_numba.tasks",
    "plrnn_numba.data",
    "plrnn_numba.metrics",
    "plrnn_numba.interop",
    "plrnn_numba.plot",
    "plrnn_numba.simulate",
    "plrnn_numba.config",
    "plrnn_numba.cli",
)

#: The numpydoc checks that must pass: every check numpydoc defines except these, which are
#: not required of this package's docstrings:
#:
#: * ES01 (extended summary) -- a one-line summary plus the sections is enough for most functions;
#: * SA01 (a See Also section) -- cross-references are written in the text where they help;
#: * EX01 (an Examples section) -- examples are given where they teach something (and then run
#:   as doctests); the pages under docs/ carry the worked examples;
#: * SS05 (summary starts with an infinitive verb) -- a heuristic that flags any first word
#:   ending in "s"; summaries of accessors and constructors are noun phrases ("Shapes of the
#:   parameters", "Counts of the cycles ...") by convention here.
EXCLUDED = {"ES01", "SA01", "EX01", "SS05"}
CHECKS = frozenset(numpydoc_validate.ERROR_MSGS) - EXCLUDED

#: the number of objects found when the test was written (59 classes, 151 functions, 151 methods,
#: 46 properties); fewer means the collection broke or public names were dropped
MIN_OBJECTS = 407


def _in_package(obj) -> bool:
    return (getattr(obj, "__module__", None) or "").split(".")[0] == "plrnn_numba"


def _python_function(obj):
    """The Python function behind a compiled kernel (LazyKernel, numba dispatcher), else ``obj``."""
    py_func = getattr(obj, "py_func", None)
    return py_func if inspect.isfunction(py_func) else obj


def _members(cls):
    """``(defining class, name, member)`` of the public methods and properties of ``cls``."""
    for klass in cls.__mro__:
        if not _in_package(klass):
            continue
        for name, member in vars(klass).items():
            if name.startswith("_"):
                continue
            if isinstance(member, (classmethod, staticmethod)):
                member = member.__func__
            if inspect.isfunction(member) or isinstance(member, (property, functools.cached_property)):
                yield klass, name, member


def collect() -> dict[str, object]:
    """Map each public object's defining path to the object (a function, class or class member)."""
    objects: dict[str, object] = {}
    seen: set[int] = set()

    def add(path, obj):
        if id(obj) not in seen:
            seen.add(id(obj))
            objects[path] = obj

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        modules = [importlib.import_module(name) for name in MODULES]
    for module in modules:
        for name in module.__all__:
            obj = _python_function(getattr(module, name))
            if not (inspect.isclass(obj) or inspect.isfunction(obj)) or not _in_package(obj):
                continue  # constants, tables, submodules
            add(f"{obj.__module__}.{obj.__qualname__}", obj)
            if inspect.isclass(obj):
                for klass, member_name, member in _members(obj):
                    add(f"{klass.__module__}.{klass.__qualname__}.{member_name}", member)
    return objects


OBJECTS = collect()


def _inherited_doc(path: str) -> str | None:
    """The raw docstring that an undocumented override at ``path`` inherits from a package base class."""
    module_and_class, name = path.rsplit(".", 1)
    try:
        cls = numpydoc_validate.Validator._load_obj(module_and_class)
    except (ImportError, AttributeError):
        return None
    if not inspect.isclass(cls):
        return None
    for base in cls.__mro__[1:]:
        member = vars(base).get(name)
        if member is not None and _in_package(base):
            if isinstance(member, (classmethod, staticmethod)):
                member = member.__func__
            if getattr(member, "__doc__", None):
                return member.__doc__
    return None


class _Validator(numpydoc_validate.Validator):
    """A validator of one collected object (by its path in ``OBJECTS``), with inherited docstrings."""

    def __init__(self, obj_name):
        obj = OBJECTS[obj_name]
        super().__init__(numpydoc_validate.get_doc_object(obj))
        self._path = obj_name
        if not self.raw_doc:
            self.raw_doc = _inherited_doc(obj_name) or ""
            if self.raw_doc and not self.clean_doc:
                self.clean_doc = inspect.cleandoc(self.raw_doc)
                self.doc = numpydoc_validate.get_doc_object(obj, doc=self.clean_doc)

    @property
    def name(self):
        return self._path


def test_the_collection_covers_the_public_api():
    assert len(OBJECTS) >= MIN_OBJECTS, len(OBJECTS)
    import plrnn_numba as pn

    for obj in (pn.train, pn.PLRNN, pn.PLRNN.init, pn.Model.kernels, pn.dynamics.scyfi,
                pn.dynamics.solve_region_sequence.py_func, pn.sweep.sweep, pn.config.LazyKernel.for_signature):
        assert any(o is obj for o in OBJECTS.values()), obj


@pytest.mark.parametrize("path", sorted(OBJECTS))
def test_docstring(path):
    result = numpydoc_validate.validate(path, validator_cls=_Validator)
    errors = [f"{code}: {message}" for code, message in result["errors"] if code in CHECKS]
    assert not errors, f"{path}:\n  " + "\n  ".join(errors)
