"""Request and response models of the HTTP API (pydantic; they are also the OpenAPI schema).

Every size is bounded here, so an oversized or malformed request is a 422 that names the field.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

MAX_ID = 256
MAX_TITLE = 1_000
MAX_TEXT = 4_000
MAX_FIELDS = 32
MAX_FIELD_KEY = 64
MAX_LIST = 64
MAX_HISTORY = 500
MAX_K = 100
MAX_BATCH = 1_000

ID_PATTERN = r"^[^\x00-\x20\x7f\ufffd]([^\x00-\x1f\x7f\ufffd]*[^\x00-\x20\x7f\ufffd])?$"
"""No control characters, and no space at either end ("196 " made a user of its own); no U+FFFD,
what a URL's undecodable bytes ("%ff") are read as."""


def nfc(value: str) -> str:
    """An id in Unicode normal form C: "cafe\u0301" is "caf\u00e9" (the store keyed a user by the
    form sent, so one user's feedback in two forms made two users; the model's own ids are
    matched in either form, `Vocabulary`)."""
    return value if value.isascii() else unicodedata.normalize("NFC", value)


Id = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_ID, pattern=ID_PATTERN), AfterValidator(nfc)
]
#: What a field name may hold (user side info, item fields, filters).
FIELD_KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]*$"
FieldKey = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_FIELD_KEY, pattern=FIELD_KEY_PATTERN)
]
ShortText = Annotated[str, StringConstraints(max_length=MAX_TITLE)]
Scalar = Annotated[float, Field(allow_inf_nan=False)] | int | bool | ShortText
FieldValue = Scalar | Annotated[list[Scalar], Field(max_length=MAX_LIST)]


def _no_bool(value: Any) -> Any:
    """JSON ``true`` is no number (pydantic took it as 1: a rating of 1 star, a k of 1), nor is
    a string ("5" was read as 5, where the API says it refuses wrong types)."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    if isinstance(value, str):
        raise ValueError(f"must be a number, not the text {value[:20]!r}")
    return value


def _only_bool(value: Any) -> Any:
    """JSON ``true``/``false`` only: pydantic read "no", "off", "0" and 0 as false (and "yes"
    as true), where every other field of the API refuses a value of the wrong type."""
    if value is not None and not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {value!r}")
    return value


Bool = Annotated[bool, BeforeValidator(_only_bool)]

Number = Annotated[float, Field(allow_inf_nan=False), BeforeValidator(_no_bool)]
"""A finite number; true and false are refused."""

FeedbackKind = Literal["view", "click", "like", "dislike", "rating"]
MAX_UNIX_SECONDS = 1e11
"""Later than any real event in seconds (year ~5100); milliseconds since 1970 are larger."""


class Strict(BaseModel):
    """Unknown keys are an error (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid")


def _check_fields(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None and len(value) > MAX_FIELDS:
        raise ValueError(f"at most {MAX_FIELDS} fields, got {len(value)}")
    return value


# ---------------------------------------------------------------------------------- items
class ItemIn(Strict):
    """An item's text and other fields."""

    title: ShortText | None = Field(None, description="Display title; also text for the encoder.")
    text: Annotated[str, StringConstraints(max_length=MAX_TEXT)] | None = Field(
        None, description="Free description, used by text models."
    )
    fields: dict[FieldKey, FieldValue] = Field(
        default_factory=dict,
        description='Other fields, e.g. {"year": "1995", "genres": ["Comedy"]}; filterable.',
    )

    _fields = field_validator("fields")(_check_fields)

    @model_validator(mode="after")
    def _has_text(self) -> ItemIn:
        if not ((self.title or "").strip() or (self.text or "").strip() or self.fields):  # "   " is none
            raise ValueError("an item needs a title, a text or some fields")
        return self


class ItemWithId(ItemIn):
    """An item with its id (bulk create)."""

    id: Id


class ItemOut(BaseModel):
    """An item as the service knows it."""

    id: str
    title: str | None = None
    text: str | None = None
    fields: dict[str, Any] = Field(default_factory=dict)
    recommendable: bool = Field(description="Whether the served model can recommend it now.")
    source: Literal["model", "store"] = Field(description="From the model's catalogue or added via the API.")
    notes: list[str] = Field(
        default_factory=list,
        description="What of a written item the model does not read (fields outside its item text).",
    )


class ItemList(BaseModel):
    items: list[ItemOut]
    total: int


# ---------------------------------------------------------------------------------- users
class UserIn(Strict):
    """A user's optional free text and side info."""

    text: Annotated[str, StringConstraints(max_length=MAX_TEXT)] | None = Field(
        None, description='What the user said they like, e.g. "space adventures with humour".'
    )
    info: dict[FieldKey, Scalar] = Field(
        default_factory=dict,
        # (`user_info`, as /recommend and the Python Query call it, was a 422 here)
        validation_alias=AliasChoices("info", "user_info"),
        description='Side info, e.g. {"age": 25, "occupation": "student"}; also read as '
        "`user_info`, its name in /recommend.",
    )

    _info = field_validator("info")(_check_fields)


class UserOut(BaseModel):
    id: str
    text: str | None = None
    info: dict[str, Any] = Field(default_factory=dict, description="The side info stored for this user.")
    training_info: dict[str, Any] = Field(
        default_factory=dict,
        description="A user the model trained on: their side info in the training data, which the "
        "model reads too (the stored `info` wins where both give a field).",
    )
    known_to_model: bool = Field(description="Whether the served model trained on this user.")
    feedback: int = Field(description="Number of stored feedback events.")


class UserDeleted(BaseModel):
    id: str
    deleted: bool
    feedback_deleted: int


# ---------------------------------------------------------------------------------- feedback
class FeedbackIn(Strict):
    """One feedback event. ``value`` is required for ``rating`` and refused otherwise."""

    user: Id
    item: Id
    kind: FeedbackKind = Field(
        description="view (seen only), click or like (a like), dislike (never recommended again; "
        "items like it are not pushed down, which lowered accuracy: benchmarks/dislikes.md), "
        "rating (with value; 40% of the top rating or less is a dislike)."
    )
    value: Number | None = Field(None, validate_default=True)
    timestamp: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = Field(
        None, description="Unix seconds; default: when the server receives it."
    )

    @field_validator("value")
    @classmethod
    def _value_fits_kind(cls, value: float | None, info: ValidationInfo) -> float | None:
        kind = info.data.get("kind")
        if kind == "rating" and value is None:
            raise ValueError("a rating event needs a value")
        if kind is not None and kind != "rating" and value is not None:  # it was dropped silently
            raise ValueError(
                f"only a rating takes a value, not a {kind} event: send kind 'rating' with value "
                f"{value:g}, or the {kind} without a value"
            )
        return value

    @field_validator("timestamp")
    @classmethod
    def _unix_seconds(cls, timestamp: float | None) -> float | None:
        if timestamp is not None and timestamp > MAX_UNIX_SECONDS:
            raise ValueError(
                f"timestamp {timestamp:g} is after the year 5000: send Unix seconds, not "
                "milliseconds (divide by 1000)"
            )
        return timestamp


class FeedbackBatch(Strict):
    events: Annotated[list[FeedbackIn], Field(min_length=1, max_length=MAX_BATCH)]


class FeedbackOut(BaseModel):
    user: str
    item: str
    kind: str
    value: float | None = None
    timestamp: float
    seq: int


class FeedbackAck(BaseModel):
    accepted: int
    events: list[FeedbackOut]
    notes: list[str] = Field(
        default_factory=list,
        description="Stored events that change nothing, and why (an older event than the "
        "user's newest on the item, which decides how they liked it).",
    )


# ---------------------------------------------------------------------------------- recommend
Filters = Annotated[
    dict[FieldKey, FieldValue],
    Field(
        description="Keep items whose field equals the value (or, for list fields such as genres, "
        'contains it); a list means any of. E.g. {"genres": ["Comedy", "Drama"], "year": "1995"}.'
    ),
]


class RecommendOptions(Strict):
    """Ranking options shared by every recommend endpoint."""

    k: Annotated[int, BeforeValidator(_no_bool)] = Field(10, ge=1, le=MAX_K, description="How many items.")
    exclude_seen: Bool = Field(True, description="Leave out items the user already interacted with.")
    exclude: Annotated[list[Id], Field(max_length=MAX_HISTORY)] = Field(
        default_factory=list, description="Item ids to leave out (e.g. already on screen)."
    )
    filters: Filters = Field(default_factory=dict)
    explore: Annotated[bool | None, BeforeValidator(_only_bool)] = Field(
        None, description="Use the exploration policy (None: the service default for new users)."
    )
    explain: Bool = Field(True, description="Add a reason to each item.")
    seed: Annotated[int | None, BeforeValidator(_no_bool)] = Field(
        None,
        ge=0,
        le=2**32 - 1,
        description="Seed of the exploration draw, taken with the user (or the session): each "
        "user gets their own draw, the same on every call.",
    )

    _filters = field_validator("filters")(_check_fields)


class RecommendRequest(RecommendOptions):
    """Recommend for a known user and/or an anonymous session (items and/or free text)."""

    user: Id | None = Field(None, description="A known user id (training history and stored feedback).")
    items: Annotated[list[Id], Field(max_length=MAX_HISTORY)] = Field(
        default_factory=list, description="Items the session liked (or rated, with ratings)."
    )
    ratings: Annotated[list[Number], Field(max_length=MAX_HISTORY)] | None = Field(
        None, description="One rating per item; default: liked."
    )
    text: Annotated[str, StringConstraints(max_length=MAX_TEXT)] | None = Field(
        None, description="What the session said it likes."
    )
    user_info: dict[FieldKey, Scalar] | None = Field(None, description="Side info of the session.")

    _user_info = field_validator("user_info")(_check_fields)  # (a user's stored info has the cap)

    @field_validator("ratings")
    @classmethod
    def _ratings_match(cls, ratings: list | None, info: ValidationInfo) -> list | None:
        # (a field's check, so the error names `ratings`; as the request's it named `body`)
        items = info.data.get("items")
        if ratings is not None and items is not None and len(ratings) != len(items):
            values, of = (
                ("value" if len(ratings) == 1 else "values"),
                ("item" if len(items) == 1 else "items"),
            )
            raise ValueError(f"ratings has {len(ratings)} {values} for {len(items)} {of}")
        return ratings


class RecommendedItem(BaseModel):
    # a model may score an item +inf (the best score there is): JSON has no number for it, and
    # pydantic's default wrote null, which reads as "no score"; "Infinity" parses in Python and JS
    model_config = ConfigDict(ser_json_inf_nan="strings")

    item: str
    title: str | None = None
    fields: dict[str, Any] = Field(default_factory=dict)
    score: float = Field(
        description='The ranking score (a posterior draw when exploring); "Infinity" for a model\'s '
        "+inf, the best score there is."
    )
    mean_score: float = Field(description='The model\'s expected score ("Infinity" as in `score`).')
    reason: str | None = None
    because: list[str] = Field(default_factory=list, description="History items the reason cites.")
    explored: bool = Field(
        False,
        description="Whether exploration, not the model's best guess, put the item in the list (said "
        "with explain=false too, where no reason says it).",
    )


class RecommendResponse(BaseModel):
    user: str | None = None
    policy: str = Field(description="greedy, thompson or ucb.")
    model_version: int
    history_size: int = Field(
        description="History items the model adapted to (likes, and ratings that are no dislike)."
    )
    items: list[RecommendedItem]
    notes: list[str] = Field(
        default_factory=list,
        description="What in the request could not be used: free text or side info the model does not "
        "read, items it cannot score, filter values no item has.",
    )


# ---------------------------------------------------------------------------------- admin
class SwapRequest(Strict):
    path: Annotated[str, StringConstraints(min_length=1, max_length=4096)] = Field(
        description="A saved model directory (config.json, vocab.json, state.npz), inside the folder "
        "hot swap loads from; a relative path is read from that folder, as `source` gives it."
    )

    @field_validator("path")
    @classmethod
    def _no_control_characters(cls, path: str) -> str:
        """A NUL in the path failed in resolving it, a 500."""
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):
            raise ValueError("a model path holds no control characters")
        return path


class ModelInfo(BaseModel):
    model: str
    source: str = Field(
        description="The served model's folder, relative to the folder hot swap loads from "
        "(the first served model's parent unless the server says); 'in-memory' for a model object."
    )
    version: int
    loaded_at: float
    items: int
    recommendable: int
    users: int
    exploration: dict[str, Any]
    index: str | None
    reads_text: bool = Field(description="Whether the model reads free text (request or user text).")
    side_fields: list[str] = Field(description="The user side-info fields the model reads.")
    side_values: dict[str, list[str]] = Field(
        default_factory=dict,
        description="The values the model learned for each side-info field of words (not of "
        "numbers): 'F' and 'M', not 'female', where its data wrote them so.",
    )
    like_rating: float = Field(description="The rating of a like on the model's scale (its top).")
    dislike_rating: float = Field(
        description="The rating that says a dislike on the model's scale (a request's `ratings`)."
    )


class Health(BaseModel):
    status: str
    detail: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    """Every error: a type, a message, and the field at fault when there is one."""

    error: str
    message: str
    field: str | None = None
    errors: list[dict[str, Any]] = Field(default_factory=list)
