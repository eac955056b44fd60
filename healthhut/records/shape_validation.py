"""R4B validation of stored FHIR JSON that runs the full fhir.resources model once per document *shape*.

Why: the full model costs 0.3-0.5 ms per Observation (every nested element goes through Python validators),
about six durable commits' worth, and the ingest path validates every record it stores. Yet the normaliser
emits a handful of shapes; from one reading to the next only the primitive values change (the numbers, the
times, the identifier).

What fhir.resources checks splits cleanly into two parts:
- structure: which keys are present (unknown keys are refused), whether a value is an object, a list or a
  scalar of which JSON type, nulls inside lists, required elements, one value per choice type `value[x]`,
  the `resourceType`. The model-level validators of fhir_core (`reject_null_complex_elements`,
  `_validate_required_primitive_elements`, `_validate_one_of_many`, FHIRPrimitiveExtension's "one of") look
  only at presence and null-ness, never at a value;
- primitive values: each primitive element's own type validator (code, uri, dateTime, decimal patterns ...).

So a document is encoded as (shape, leaf values): the shape keeps every key and the JSON type of every
scalar; the leaves are the primitive values in document order. The first document of a shape gets the full
model (`model_validate_json` on the exact text); if it passes, a plan is made from the model's own field
annotations: for every leaf, the same annotated type fhir_core validates that element with. Later documents
of that shape are checked leaf by leaf with those validators (a value already accepted for the same element
type is not checked again), and the top-level `resourceType` must equal the planned one. A shape that fails
is never remembered, so an invalid document always meets the full model.

Finding the shape costs more than checking the leaves, so a planned shape also gets a `_Template`: one
regular expression over the compact text, which recognises the shape and yields the leaves without parsing.
A text written otherwise (spaces, other key escapes) takes the parsing path, with the same verdict.
`tests/unit/records/test_shape_validation.py` holds the differential tests: the verdict equals the full
model's for mutated real documents, compact and spaced.

Not for: resources with `contained` resources (the element type depends on a nested resourceType): such
shapes are planned as "always full", which is correct, only slower.
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Callable
from typing import Any

from healthhut.errors import ReadingError
from healthhut.records.validation import refusal

Shape = tuple[Any, ...]
Leaf = Any  # a JSON scalar: str, int, float, bool or None

# Shape tokens: a bare key means "this key holds a string" (the commonest case, one token); any other value
# is a tuple starting with its key; _CLOSE ends an object. Scalar tags are looked up by exact type (bool is
# an int subclass).
_TAGS: dict[type, int] = {str: 0, int: 1, float: 2, bool: 3, type(None): 4}
_OPEN, _CLOSE, _OBJECTS, _SCALARS = -1, -2, -3, -4
_ALWAYS_FULL = None
KNOWN_VALUES_LIMIT = 4_096  # accepted tokens remembered per element type (cleared when exceeded): codes and units
# repeat all day, identifiers and times never do, so a small set keeps the first and bounds memory
SHAPES_LIMIT = 1_024         # plans remembered; a builder emits a few dozen shapes at most


class _Irregular(Exception):
    """A list mixing objects and scalars, or nested lists: nothing FHIR JSON has; the full model decides."""


def flatten(node: dict[str, Any], out: list[Any], leaves: list[Leaf]) -> None:
    """Append the shape tokens of a JSON object to `out` and its scalar values, in document order, to `leaves`.

    One flat token list (not nested tuples), string values first: this runs for every stored record and is
    the main cost of the fast path.
    """
    append, add_leaf = out.append, leaves.append
    for key, value in node.items():
        kind = type(value)
        if kind is str:
            append(key)
            add_leaf(value)
        elif kind is dict:
            append((key, _OPEN))
            flatten(value, out, leaves)
            append(_CLOSE)
        elif kind is list:
            if value and type(value[0]) is dict:
                append((key, _OBJECTS, len(value)))
                for item in value:
                    if type(item) is not dict:
                        raise _Irregular
                    flatten(item, out, leaves)
                    append(_CLOSE)
            else:
                try:
                    append((key, _SCALARS, *[_TAGS[type(item)] for item in value]))
                except KeyError:
                    raise _Irregular from None
                leaves.extend(value)
        else:
            tag = _TAGS.get(kind)
            if tag is None:
                raise _Irregular
            append((key, tag))
            add_leaf(value)


def shape_of(document: dict[str, Any]) -> tuple[Shape, list[Leaf]]:
    """The shape of a parsed JSON object and its scalar values; _Irregular for lists FHIR never has."""
    out: list[Any] = []
    leaves: list[Leaf] = []
    flatten(document, out, leaves)
    return tuple(out), leaves


class _Check:
    """Validates one leaf with the annotated type fhir_core uses for that element.

    `known_texts` holds the JSON tokens already accepted for this element type (shared by every check of that
    element): a token's text fixes its value, so a text once accepted needs no second look.
    """

    __slots__ = ("known_texts", "path", "validate")

    def __init__(self, path: str, validate: Callable[[Any], Any], known_texts: set[str]) -> None:
        self.path, self.validate, self.known_texts = path, validate, known_texts


class _Template:
    """A known shape as one regular expression over the compact JSON text, a group per scalar.

    The text of one shape differs from another document's only in its scalars, so once a shape is planned its
    keys and punctuation become literal pattern text and each scalar a group that matches exactly one JSON
    token of the kind the shape holds there (string, number, true/false, null). A text that matches is
    therefore valid JSON of that very shape, and the groups are its scalars in document order, as `flatten`
    gives them: the plan's checks apply without parsing the text into objects at all. Possessive quantifiers
    make a text of another shape fail at its first difference instead of backtracking.
    """

    __slots__ = ("plan", "regex")

    def __init__(self, regex: re.Pattern[str], plan: Plan) -> None:
        self.regex, self.plan = regex, plan


_STRING = r'("[^"\\\x00-\x1f]*+(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*+)*+")'
_NUMBER = r"(-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?(?:[eE][+-]?[0-9]++)?)"
_SCALAR_PATTERNS = {str: _STRING, int: _NUMBER, float: _NUMBER, bool: "(true|false)", type(None): "(null)"}
TEMPLATES_PER_BUCKET = 4  # shapes with the same number of objects tried one after the other
TEMPLATES_LIMIT = 256     # compiled patterns kept (a few KB each)


def _pattern(value: Any) -> str:
    """The template pattern of a parsed JSON value, as `dumps` writes it (compact, keys as json writes them)."""
    kind = type(value)
    if kind is dict:
        return "\\{" + ",".join(re.escape(json.dumps(key, ensure_ascii=False)) + ":" + _pattern(item)
                               for key, item in value.items()) + "\\}"
    if kind is list:
        return "\\[" + ",".join(_pattern(item) for item in value) + "\\]"
    return _SCALAR_PATTERNS[kind]


def _token_text(value: Leaf) -> str:
    """A parsed scalar written back as a JSON token that parses to the same value (NaN stays NaN)."""
    return json.dumps(value, ensure_ascii=False)


def _token_value(token: str) -> Any:
    """The value of one JSON token matched by a template group (a string without escapes needs no parser)."""
    if token[0] == '"' and "\\" not in token:
        return token[1:-1]
    return json.loads(token)


Plan = tuple[_Check, ...]


class ShapeValidator:
    """Full R4B model validation per shape, leaf validation per document. One per normaliser settings.

    Not shared between processes; safe to share between threads (dict and set updates are atomic; a race
    costs at most a second full validation of a shape).
    """

    def __init__(self, model: str) -> None:
        """`model` names the R4B class as "module:Class"; it is imported on the first validation."""
        self._model_path = model
        self._loaded: type[Any] | None = None
        self._name = model.rpartition(":")[2]
        self._plans: dict[Shape, Plan | None] = {}
        self._known_texts: dict[tuple[type, str, bool], set[str]] = {}
        self._templates: dict[int, list[_Template]] = {}
        self._template_count = 0
        self._adapters: dict[tuple[type, str, bool], Callable[[Any], Any]] = {}

    @property
    def _model(self) -> type[Any]:
        if self._loaded is None:
            import importlib

            module, _, name = self._model_path.partition(":")
            self._loaded = getattr(importlib.import_module(module), name)
        return self._loaded

    def validate(self, text: str) -> None:
        """Raise ReadingError (naming element paths only, never values) unless `text` is a valid resource."""
        bucket = self._templates.get(text.count("{"))
        if bucket is not None:
            for template in bucket:
                match = template.regex.fullmatch(text)
                if match is not None:
                    self._check_tokens(template.plan, match.groups())
                    return
        self._validate_parsed(text)

    def _validate_parsed(self, text: str) -> None:
        """The path of a text no template matches: parse, find the shape, plan it (after the full model)."""
        try:
            document = json.loads(text)
        except ValueError:
            raise ReadingError(f"the FHIR {self._name} is not JSON") from None
        if type(document) is not dict:
            self._full(text)
            return
        try:
            shape, leaves = shape_of(document)
        except _Irregular:
            self._full(text)  # refuses it (FHIR JSON has no such list); a shape is never remembered for it
            return
        plans = self._plans
        if shape in plans:
            plan = plans[shape]
            if plan is _ALWAYS_FULL:
                self._full(text)
            else:  # the rare path of a known shape (a text not written compactly): its scalars as JSON tokens
                self._check_tokens(plan, tuple(_token_text(leaf) for leaf in leaves))
            return
        self._full(text)
        if len(plans) >= SHAPES_LIMIT:
            plans.clear()
        plan = self._plan(document)
        if plan is not _ALWAYS_FULL and len(plan) != len(leaves):
            plan = _ALWAYS_FULL
        plans[shape] = plan
        if plan is not _ALWAYS_FULL:
            self._remember_template(text, document, plan)  # once per shape: texts come compact from `dumps`

    def _remember_template(self, text: str, document: dict[str, Any], plan: Plan) -> None:
        bucket = self._templates.setdefault(text.count("{"), [])
        if len(bucket) >= TEMPLATES_PER_BUCKET or self._template_count >= TEMPLATES_LIMIT:
            return  # this shape keeps the parsing path: correct, only slower
        regex = re.compile(_pattern(document))
        if regex.groups != len(plan) or regex.fullmatch(text) is None:
            return  # not written the way `dumps` writes (spaces, escaped keys): no template for it
        bucket.append(_Template(regex, plan))
        self._template_count += 1

    def _check_tokens(self, plan: Plan, tokens: tuple[str, ...]) -> None:
        from pydantic import ValidationError

        for check, token in zip(plan, tokens, strict=True):
            if token in check.known_texts:
                continue
            try:
                check.validate(_token_value(token))
            except (ValidationError, ValueError, TypeError):
                raise ReadingError(f"the FHIR {self._name} does not validate at {check.path}") from None
            known = check.known_texts
            if len(known) >= KNOWN_VALUES_LIMIT:
                known.clear()
            known.add(token)

    def _full(self, text: str) -> None:
        from pydantic import ValidationError

        try:
            self._model.model_validate_json(text)
        except ValidationError as exc:
            raise refusal(self._name, exc) from None

    # --- planning (once per shape) ---------------------------------------------------------------------
    def _plan(self, document: dict[str, Any]) -> Plan | None:
        checks: list[_Check] = []
        try:
            self._plan_object(self._model, document, "", checks)
        except _Unplannable:
            return _ALWAYS_FULL
        return tuple(checks)

    def _plan_object(self, model: type[Any], node: dict[str, Any], path: str, checks: list[_Check]) -> None:
        """One check per scalar, in `flatten`'s order: the element's own annotated type (per item in lists)."""
        fields = _fields_by_alias(model)
        for key, value in node.items():
            where = f"{path}.{key}" if path else key
            field = fields.get(key)
            if field is None:
                if key != "resourceType" or path:  # the full model accepted it, yet this walk does not know it
                    raise _Unplannable
                checks.append(_Check(where, _equal_to(value), set()))  # must stay the planned type
                continue
            complex_model = _complex_model(field.annotation)
            kind = type(value)
            if complex_model is not None:
                if kind is dict:
                    self._plan_object(complex_model, value, where, checks)
                elif kind is list and all(type(item) is dict for item in value):
                    for index, item in enumerate(value):
                        self._plan_object(complex_model, item, f"{where}.{index}", checks)
                else:
                    raise _Unplannable
            elif kind is dict:
                raise _Unplannable
            elif kind is list:
                validate = self._adapter(model, key, field, item=True)
                known = self._known_texts.setdefault((model, key, True), set())
                checks.extend(_Check(f"{where}.{index}", validate, known) for index in range(len(value)))
            else:
                checks.append(_Check(where, self._adapter(model, key, field, item=False),
                                     self._known_texts.setdefault((model, key, False), set())))

    def _adapter(self, model: type[Any], key: str, field: Any, *, item: bool) -> Callable[[Any], Any]:
        cached = self._adapters.get((model, key, item))
        if cached is None:
            from pydantic import TypeAdapter

            annotation = _list_item(field) if item else field.annotation
            if field.metadata:
                annotation = typing.Annotated[(annotation, *field.metadata)]
            cached = TypeAdapter(annotation, config=_adapter_config(model)).validate_python
            self._adapters[(model, key, item)] = cached
        return cached


def _equal_to(expected: Any) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if value != expected:
            raise ValueError("another resourceType")
    return check


class _Unplannable(Exception):
    """The document holds a construct this planner does not follow (e.g. contained resources)."""


def _adapter_config(model: type[Any]) -> Any:
    """The model's string/number settings, so a leaf is validated exactly as inside the model."""
    from pydantic import ConfigDict

    config = dict(getattr(model, "model_config", {}))
    for not_for_a_type in ("extra", "validate_assignment", "populate_by_name", "title", "defer_build"):
        config.pop(not_for_a_type, None)
    return ConfigDict(**config)  # type: ignore[typeddict-item]


def _list_item(field: Any) -> Any:
    """X of a repeating primitive element `Optional[List[X]]`; a list of them is valid iff each item is."""
    if field.metadata:
        raise _Unplannable  # a constraint on the list itself
    members = [arg for arg in typing.get_args(field.annotation) if arg is not type(None)]
    if len(members) != 1 or typing.get_origin(members[0]) is not list:
        raise _Unplannable  # e.g. fhir_comments: str | List[str]
    return typing.get_args(members[0])[0]


def _fields_by_alias(model: type[Any]) -> dict[str, Any]:
    return {(field.alias or name): field for name, field in model.model_fields.items()}


def _complex_model(annotation: Any) -> type[Any] | None:
    """The FHIR model class of a complex element (`abc.QuantityType | None`, `List[...]`), else None."""
    from fhir_core.types import FhirBase

    pending = [annotation]
    while pending:
        current = pending.pop()
        if isinstance(current, type) and issubclass(current, FhirBase):
            model: type[Any] = current.get_model_klass()
            if model.__name__ in ("Resource", "Element", "DomainResource"):
                raise _Unplannable  # the concrete type depends on a nested resourceType
            return model
        pending.extend(typing.get_args(current))
    return None
