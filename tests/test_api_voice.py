"""One API voice: a common check over every public callable and result (in the spirit of scikit-learn's
estimator checks).

It walks ``bw.__all__`` (and the public modules it names: ``analysis``, ``directions``, ``dct``,
``curvature``, ``zoo``, ``plotting``, ``widgets``) and ``bw.presets`` when present, and enforces:

1. **Input naming.** One input (one sample of the classifier's input shape, or one point) is ``x``;
   a function that accepts one input *or* a batch also names it ``x`` (like ``torch.nn.Module.forward``).
   A batch only is ``images``. Two inputs that play the same part are ``x_a``/``x_b`` and, batched,
   ``images_a``/``images_b``; a batch in a named role is ``<role>_images`` (``train_images``,
   ``source_images``, ``partner_images``). In a feature space the batch is ``features``. Names such as
   ``A``, ``B``, ``starts``, ``partners``, ``z``, ``features_train``, ``image``, ``inputs`` are not used.
2. **Argument order.** The classifier comes first wherever one is taken (``clf``), then the data.
3. **Keyword-only options.** Required arguments (the data) may be positional; every option (an
   argument with a default) is keyword-only, apart from the few listed in ``POSITIONAL_OPTIONAL``.
4. **Results** are frozen dataclasses with a ``__repr__`` written for them (a generated repr prints
   whole tensors); a dataclass of plain scalars may keep the generated one. Each array field notes its
   shape beside it; things of the input space are CPU tensors, one number per item a NumPy array.
5. **Type hints** on every parameter and return value of public functions and methods.
6. **Long work** takes ``progress=`` and ``cancel=`` (keyword-only). ``PROTOCOL_PENDING`` lists
   what is not wired yet; it is exact, so a function that gains the protocol must leave the list.
7. **One meaning per name.** ``max_iter`` is always a bound on DeepFool steps (bisection steps are
   ``bisection_steps``, SparseFool rounds ``max_rounds``); no ``deepfool_iter``.
8. **Results, not bare arrays**, from analyses; ``available()`` returns a list of names everywhere.
9. **No compatibility shims**: 0.1.0 is the first release, so no old name, alias or argument order is kept.
10. **A wrong classifier** is a ``TypeError`` naming ``clf``; whatever reaches ``clf.check_inputs`` is an
    input (so it is named by rule 1) and is reported under the parameter's own name.

Lists named ``*_PENDING`` hold what other parts of the kit have not done yet; they are exact (a check
fails when an entry starts to pass), so they only shrink.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import types
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch

import boundary_widgets as bw

PUBLIC_MODULES = ["analysis", "directions", "dct", "curvature", "zoo", "plotting", "widgets"]


def _presets() -> types.ModuleType | None:
    try:
        return importlib.import_module("boundary_widgets.core.presets")
    except ImportError:
        return None


def _module_names(module: types.ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [
            n
            for n, obj in vars(module).items()
            if not n.startswith("_") and getattr(obj, "__module__", None) == module.__name__
        ]
    return list(names)


def _public_objects() -> dict[str, object]:
    """Qualified name -> object, each object once (first name wins)."""
    found: dict[str, object] = {}
    seen: set[int] = set()
    modules: list[tuple[str, types.ModuleType]] = [("bw", bw)]
    modules += [(f"bw.{name}", getattr(bw, name)) for name in PUBLIC_MODULES]
    if (presets := _presets()) is not None:
        modules.append(("bw.presets", presets))
    for prefix, module in modules:
        for name in _module_names(module):
            obj = getattr(module, name)
            if isinstance(obj, types.ModuleType) or id(obj) in seen:
                continue
            seen.add(id(obj))
            found[f"{prefix}.{name}"] = obj
    return found


PUBLIC = _public_objects()


def _callables() -> Iterator[tuple[str, Callable]]:
    """Public functions, public classes' constructors, and their public methods and classmethods."""
    for qualname, obj in PUBLIC.items():
        if inspect.isclass(obj):
            if issubclass(obj, BaseException) or getattr(obj, "_is_protocol", False):
                continue
            if not dataclasses.is_dataclass(obj) and "__init__" in vars(obj):
                yield f"{qualname}.__init__", obj.__init__
            for name, member in vars(obj).items():
                if name.startswith("_"):
                    continue
                if isinstance(member, classmethod | staticmethod):
                    member = member.__func__
                if inspect.isfunction(member):
                    yield f"{qualname}.{name}", member
        elif inspect.isfunction(obj):
            yield qualname, obj


CALLABLES = dict(_callables())
RESULTS = {name: obj for name, obj in PUBLIC.items() if inspect.isclass(obj) and dataclasses.is_dataclass(obj)}


def _parameters(function: Callable) -> list[inspect.Parameter]:
    return [p for p in inspect.signature(function).parameters.values() if p.name not in ("self", "cls")]


# --- 1. input naming --------------------------------------------------------------------------

ALLOWED_INPUT = re.compile(r"^(x|x_[ab]|images|images_[ab]|[a-z]+_images|features)$")
LOOKS_LIKE_INPUT = re.compile(
    r"(^x$|^x_|image|^features|^inputs?$|^[A-Z]$|^imgs?$|^samples?$|^batch$|^starts$|^partners$|^z$)"
)
# Parameters that look like an input by name but are something else.
NOT_INPUT = {
    "bw.analysis.embedding_linearity": {"C"},  # the SVM's regularisation, scikit-learn's name
    "bw.SliceExplorer.__init__": {"sample"},  # an index into the dataset
    "bw.MarginExplorer.show_slice": {"image"},  # an index into the explorer's images
}
# Inputs still to rename (other owners; listed for the lead): exact, so it can only shrink.
NAMING_PENDING: dict[str, set[str]] = {}


def test_the_walk_sees_the_whole_public_api():
    # Guards the walk itself: a broken import or an empty __all__ would make every check vacuous.
    for name in ("bw.deepfool", "bw.find_paths", "bw.analysis.borderline_samples", "bw.directions.make"):
        assert name in CALLABLES
    for name in ("bw.DeepFoolResult", "bw.analysis.TrajectoryComplexity", "bw.directions.Direction"):
        assert name in RESULTS
    assert len(CALLABLES) > 60
    checked = [m for f in CALLABLES.values() for m in CHECKED_INPUT.findall(_source(f))]
    assert len(checked) > 15, "the source scan for check_inputs finds nothing"
    assert len(_array_fields(bw.DeepFoolResult)) == 9 and len(_array_fields(bw.PlaneSlice)) >= 6


@pytest.mark.parametrize("qualname", sorted(CALLABLES))
def test_inputs_follow_one_naming_rule(qualname):
    skip = NOT_INPUT.get(qualname, set())
    offenders = set()
    for parameter in _parameters(CALLABLES[qualname]):
        name = parameter.name
        if name in skip or parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            continue
        if LOOKS_LIKE_INPUT.search(name) and not name.startswith(("n_", "max_")) and not ALLOWED_INPUT.match(name):
            offenders.add(name)
    assert offenders == NAMING_PENDING.get(qualname, set()), f"{qualname}: input parameters {offenders} break the rule"


def _source(function: Callable) -> str:
    try:
        return inspect.getsource(inspect.unwrap(function))
    except (OSError, TypeError):
        return ""


CHECKED_INPUT = re.compile(r"check_inputs\(\s*(\w+)\s*,\s*\"([\w.\[\]']+)\"")


@pytest.mark.parametrize("qualname", sorted(CALLABLES))
def test_inputs_checked_by_the_classifier_are_named_by_the_rule(qualname):
    # Whatever a function hands to `clf.check_inputs` is an input, whatever its name looks like; and the
    # name in the error message must be the parameter's own.
    function = inspect.unwrap(CALLABLES[qualname])
    source = _source(function)
    parameters = {p.name for p in _parameters(function)}
    for variable, message_name in CHECKED_INPUT.findall(source):
        if variable in parameters:
            assert ALLOWED_INPUT.match(variable), f"{qualname}: input `{variable}` breaks the naming rule"
            assert message_name == variable, f"{qualname}: `{variable}` is reported as `{message_name}`"


# --- 2. classifier first ----------------------------------------------------------------------

# directions.make(kind, clf, x): the kind picks the generator, as in the documented contract (DESIGN.md).
CLF_NOT_FIRST = {"bw.directions.make", "bw.directions.make_batch", "bw.directions.check_parameters"}


@pytest.mark.parametrize("qualname", sorted(CALLABLES))
def test_the_classifier_comes_first(qualname):
    names = [p.name for p in _parameters(CALLABLES[qualname])]
    if "clf" in names and qualname not in CLF_NOT_FIRST:
        assert names[0] == "clf", f"{qualname}{inspect.signature(CALLABLES[qualname])}: `clf` must come first"


TAKES_CLF = sorted(
    q
    for q, f in CALLABLES.items()
    if q.count(".") == 1 or (q.startswith(("bw.analysis.", "bw.directions.")) and q.count(".") == 2)
    if "clf" in {p.name for p in _parameters(f)}
)


@pytest.mark.parametrize("qualname", TAKES_CLF)
def test_a_classifier_that_is_not_one_is_a_type_error_naming_clf(qualname):
    function = CALLABLES[qualname]
    required = {
        p.name: None
        for p in _parameters(function)
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    required.update(clf=torch.nn.Linear(2, 2), **({"kind": "random"} if "kind" in required else {}))
    with pytest.raises(TypeError, match=r"`clf` must be a boundary_widgets\.Classifier"):
        function(**required)


# --- 3. keyword-only options ------------------------------------------------------------------

# Optional arguments that stay positional, with why.
POSITIONAL_OPTIONAL = {
    "ax": "matplotlib convention: plot(result, ax)",
    "figure": "matplotlib convention: plot_path(path, figure)",
    "timeout": "threading convention: wait(timeout)",
}
POSITIONAL_OPTIONAL_BY_CALLABLE = {
    "bw.SliceExplorer.__init__": {"x"},  # the image is data; None opens the explorer on a dataset sample
    "bw.FeatureSpace.__init__": {"layer"},  # where to split is data: FeatureSpace(clf, "body.2", head=...)
    "bw.directions.register": {"factory"},  # register(name, factory) or register(DirectionKind(...))
    "bw.Classifier.check_inputs": {"name"},  # the argument's name for messages: check_inputs(x, "images")
    "bw.ConnectingPath.plane_coordinates": {"plane"},  # data: the plane to project on (default: the path's)
    "bw.zoo.load": {"name"},  # which model is data: bw.zoo.load("digits-cnn")
    "bw.TrainingExplorer.step": {"epochs"},  # how far to go is the call's data: step(3)
    "bw.TrainingExplorer.play": {"epochs"},
}
MAX_POSITIONAL = 5  # class_hulls(space, train_images, train_labels, test_images, test_labels)


@pytest.mark.parametrize("qualname", sorted(CALLABLES))
def test_options_are_keyword_only(qualname):
    allowed = POSITIONAL_OPTIONAL.keys() | POSITIONAL_OPTIONAL_BY_CALLABLE.get(qualname, set())
    positional = [p for p in _parameters(CALLABLES[qualname]) if p.kind == p.POSITIONAL_OR_KEYWORD]
    offenders = [p.name for p in positional if p.default is not p.empty and p.name not in allowed]
    assert not offenders, f"{qualname}: options {offenders} must be keyword-only (after `*`)"
    assert len(positional) <= MAX_POSITIONAL, f"{qualname}: {len(positional)} positional parameters"


# --- 4. results ---------------------------------------------------------------------------------

PLAIN_FIELD = re.compile(r"^(str|int|float|bool|None|Any|tuple\[(str|int|float|Any), \.\.\.\]|[ |])+$")


# Dataclasses still without a repr of their own (other owners; listed for the lead): exact.
REPR_PENDING: set[str] = set()


def _has_written_repr(cls: type) -> bool:
    own = cls.__dict__.get("__repr__")
    code = getattr(own, "__code__", None)
    return code is not None and code.co_filename == inspect.getfile(cls)


@pytest.mark.parametrize("qualname", sorted(RESULTS))
def test_results_are_frozen_with_a_readable_repr(qualname):
    cls = RESULTS[qualname]
    assert cls.__dataclass_params__.frozen, f"{qualname} must be a frozen dataclass"
    annotations = [str(f.type) for f in dataclasses.fields(cls)]
    readable = all(PLAIN_FIELD.match(a) for a in annotations) or _has_written_repr(cls)
    if qualname in REPR_PENDING:
        assert not readable, f"{qualname} now has a readable repr: remove it from REPR_PENDING"
    else:
        assert readable, (
            f"{qualname} holds {annotations}: it needs a __repr__ of its own (a generated one prints whole arrays)"
        )


FIELD_LINE = re.compile(r"^\s+(\w+): ([^#=]+?)\s*(?:=[^#]*)?(?:#\s*(.*))?$")
# Results whose per-item numbers are still tensors (listed for the lead): exact, so it can only shrink.
TENSOR_NUMBERS_PENDING = {"bw.DeepFoolResult", "bw.SparseFoolResult"}


def _array_fields(cls: type) -> list[tuple[str, str, str]]:
    """(name, annotation, comment) of each tensor or array field, read beside its declaration."""
    fields = []
    for line in inspect.getsource(cls).splitlines():
        match = FIELD_LINE.match(line)
        if match and re.search(r"\b(Tensor|ndarray)$", match.group(2).strip()):
            fields.append((match.group(1), match.group(2).strip(), match.group(3) or ""))
    return fields


@pytest.mark.parametrize("qualname", sorted(RESULTS))
def test_result_arrays_note_their_shape(qualname):
    for name, _annotation, comment in _array_fields(RESULTS[qualname]):
        assert comment.startswith("(") or "input_shape" in comment.split(",")[0], (
            f"{qualname}.{name}: note its shape beside the field, e.g. `# (N,) float64 ...`"
        )


@pytest.mark.parametrize("qualname", sorted(n for n in RESULTS if n != "bw.Dataset"))
def test_results_hold_inputs_as_tensors_and_numbers_as_numpy(qualname):
    # The rule: things of the input space (images, perturbations, directions) are CPU tensors, ready for
    # the model; one number per item (distances, labels, flags) is a NumPy array, ready for analysis.
    numbers_as_tensors = [
        name
        for name, annotation, comment in _array_fields(RESULTS[qualname])
        if "Tensor" in annotation and re.match(r"\(\w+,\)", comment)
    ]
    if qualname in TENSOR_NUMBERS_PENDING:
        assert numbers_as_tensors, f"{qualname} follows the rule now: remove it from TENSOR_NUMBERS_PENDING"
    else:
        assert not numbers_as_tensors, f"{qualname}: per-item numbers {numbers_as_tensors} must be NumPy arrays"


# --- 5. type hints ----------------------------------------------------------------------------


@pytest.mark.parametrize("qualname", sorted(CALLABLES))
def test_public_callables_are_type_hinted(qualname):
    function = CALLABLES[qualname]
    signature = inspect.signature(function)
    missing = [p.name for p in _parameters(function) if p.annotation is p.empty]
    assert not missing, f"{qualname}: parameters without a type hint: {missing}"
    assert signature.return_annotation is not signature.empty, f"{qualname}: no return type hint"


# --- 6. progress and cancel on long work ------------------------------------------------------

# Everything that can run for more than a second on a real model.
LONG_WORK = [
    "bw.compute_slice",
    "bw.iter_slice",
    "bw.deepfool",
    "bw.sparsefool",
    "bw.principal_curvatures",
    "bw.find_path",
    "bw.find_paths",
    "bw.analysis.band_margins",
    "bw.analysis.borderline_samples",
    "bw.analysis.class_hulls",
    "bw.analysis.curvature_score",
    "bw.analysis.curvature_spectrum",
    "bw.analysis.curvature_spectra",
    "bw.analysis.borderline_pairs",
    "bw.analysis.embedding_linearity",
    "bw.analysis.trajectory_label_changes",
    "bw.directions.make",
    "bw.directions.make_batch",
]
# Not wired yet (issue 15, item 3, belongs to other helpers): exact, so it can only shrink.
PROTOCOL_PENDING = {}


def _takes_protocol(function: Callable) -> bool:
    parameters = inspect.signature(function).parameters
    return all(
        name in parameters and parameters[name].kind == inspect.Parameter.KEYWORD_ONLY
        for name in ("progress", "cancel")
    )


@pytest.mark.parametrize("qualname", LONG_WORK)
def test_long_work_takes_progress_and_cancel(qualname):
    wired = _takes_protocol(CALLABLES[qualname])
    if qualname in PROTOCOL_PENDING:
        assert not wired, f"{qualname} now takes progress=/cancel=: remove it from PROTOCOL_PENDING"
    else:
        assert wired, f"{qualname} must take keyword-only progress= and cancel="


# --- 7. one meaning per name ------------------------------------------------------------------


@pytest.mark.parametrize("qualname", sorted(CALLABLES))
def test_max_iter_always_bounds_deepfool_steps(qualname):
    function = CALLABLES[qualname]
    names = {p.name for p in _parameters(function)}
    assert "deepfool_iter" not in names, f"{qualname}: DeepFool steps are `max_iter`"
    if "max_iter" in names and qualname != "bw.deepfool":
        assert "DeepFool" in (inspect.getdoc(function) or ""), (
            f"{qualname}: `max_iter` must be documented as DeepFool steps"
        )


def test_registry_parameters_named_max_iter_are_deepfool_steps():
    for name, kind in bw.directions.kinds().items():
        for parameter in kind.parameters:
            if parameter.name == "max_iter":
                assert "DeepFool" in parameter.description, (name, parameter)
            assert parameter.name not in ("deepfool_iter", "rounds", "max_steps"), (name, parameter)


# --- 8. results, not bare arrays; available() lists names -------------------------------------

# Functions whose bare tensor is the point (a vector for a plane), with why.
BARE_RETURN_ALLOWED = {
    "bw.analysis.band_direction": "a perturbation vector for Plane.through, like Direction.vector",
}


@pytest.mark.parametrize("qualname", sorted(n for n in CALLABLES if n.startswith("bw.analysis.") and "." not in n[12:]))
def test_analyses_return_results_not_bare_arrays(qualname):
    annotation = str(inspect.signature(CALLABLES[qualname]).return_annotation)
    bare = re.search(r"\b(np\.ndarray|ndarray|torch\.Tensor|Tensor)\b", annotation)
    if qualname in BARE_RETURN_ALLOWED:
        assert bare, f"{qualname} no longer returns a bare array: drop it from BARE_RETURN_ALLOWED"
    else:
        assert not bare, f"{qualname} returns {annotation}; return a frozen result like its siblings"


AVAILABLE = {"bw.directions.available": bw.directions.available, "bw.zoo.available": bw.zoo.available}
if _presets() is not None:
    AVAILABLE["bw.presets.available"] = _presets().available
AVAILABLE_PENDING: set[str] = set()  # exact: nothing left


@pytest.mark.parametrize("qualname", sorted(AVAILABLE))
def test_available_lists_names(qualname):
    names = AVAILABLE[qualname]()
    listed = isinstance(names, list) and bool(names) and all(isinstance(n, str) for n in names)
    if qualname in AVAILABLE_PENDING:
        assert not listed, f"{qualname} now lists names: remove it from AVAILABLE_PENDING"
    else:
        assert listed, f"{qualname}() must return a list of names; got {type(names).__name__}"


def test_direction_specs_stay_reachable_by_name():
    kinds = bw.directions.kinds()
    assert list(kinds) == bw.directions.available()
    assert all(kinds[name] is bw.directions.get(name) for name in kinds)


def test_siblings_are_exported_together():
    for name in (
        "plot_slice",
        "plot_path",
        "plot_band_margins",
        "plot_curvature_spectrum",
        "plot_borderline_summary",
        "plot_class_hulls",
    ):
        assert name in bw.__all__ and callable(getattr(bw, name))
    for name in ("SliceExplorer", "PathExplorer", "MarginExplorer"):
        assert name in bw.__all__ and name in bw.widgets.__all__
        assert getattr(bw, name) is getattr(bw.widgets, name)
    for name in ("deepfool", "sparsefool", "DeepFoolResult", "SparseFoolResult"):
        assert name in bw.__all__ and getattr(bw, name) is getattr(bw.core, name)


# --- 9. no compatibility shims -----------------------------------------------------------------


def test_no_old_name_or_alias_is_kept():
    import boundary_widgets.core.validation as validation

    for module, name in ((bw, "SliceCancelled"), (bw.core.slices, "SliceCancelled"), (validation, "renamed_keywords")):
        assert not hasattr(module, name), f"{module.__name__}.{name} is a compatibility shim"
    for qualname, function in CALLABLES.items():
        assert not hasattr(function, "__renamed_keywords__"), qualname
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        bw.analysis.hull_membership(np.eye(3), z=[0.2, 0.3, 0.5])


def test_no_module_of_the_kit_warns_of_deprecation():
    from pathlib import Path

    sources = sorted(Path(bw.__file__).parent.rglob("*.py"))
    assert sources
    for source in sources:
        text = source.read_text()
        assert "DeprecationWarning" not in text and "FutureWarning" not in text, source


# --- numbers: NumPy and 0-d tensors are numbers; bools are not --------------------------------


@pytest.mark.parametrize("target", [np.int64(2), np.int32(2), torch.tensor(2), 2])
def test_class_indices_may_be_numpy_ints_or_0d_tensors(linear_clf, target):
    x = torch.zeros(1, 2, 3)
    expected = bw.deepfool(linear_clf, x, target=2)
    found = bw.deepfool(linear_clf, x, target=target)
    torch.testing.assert_close(found.perturbations, expected.perturbations)
    assert int(found.reached[0]) == 2 or not bool(found.converged[0])


def test_a_numpy_float32_std_is_a_number():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 3))
    clf = bw.Classifier(net, input_shape=(2, 3), std=np.float32(0.5), mean=np.float64(0.25))
    x = torch.rand(4, 2, 3)
    reference = bw.Classifier(net, input_shape=(2, 3), std=0.5, mean=0.25)
    torch.testing.assert_close(clf.logits(x), reference.logits(x))


@pytest.mark.parametrize(
    "call",
    [
        lambda clf: bw.deepfool(clf, torch.zeros(2, 3), target=True),
        lambda clf: bw.deepfool(clf, torch.zeros(2, 3), clip=1),
        lambda clf: bw.directions.make("adversarial", clf, torch.zeros(2, 3), target=True),
        lambda clf: bw.directions.make("adversarial", clf, torch.zeros(2, 3), clip="yes"),
    ],
)
def test_bools_are_not_class_indices_and_ints_are_not_bools(linear_clf, call):
    with pytest.raises(TypeError):
        call(linear_clf)


def test_what_a_direction_found_never_reuses_a_parameter_name(digits):
    # info["target"] once held the class reached while target= named the class aimed at.
    clf, data = digits
    x, other = data.images[0], data.images[1]
    for name, kind in bw.directions.kinds().items():
        params = {"other": other} if name == "image" else {}
        direction = bw.directions.make(name, clf, x, **params)
        clash = set(direction.info) & {p.name for p in kind.parameters}
        clash -= {"band"} if name == "dct" else set()  # the resolved band's name: the same thing, not another
        assert not clash, f"{name}: info keys {clash} are also parameters"


def test_every_module_declares_its_public_names():
    import pkgutil

    for info in pkgutil.walk_packages(bw.__path__, "boundary_widgets."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        names = getattr(module, "__all__", None)
        assert names is not None, f"{info.name} has no __all__"
        missing = [name for name in names if not hasattr(module, name)]
        assert not missing, f"{info.name}.__all__ names what it does not define: {missing}"
