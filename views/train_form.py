"""The Train page's form: every hyperparameter from `config.FIELDS`, kept as the user left it and in the URL.

The form's values live in `st.session_state.train_form` (strings, as in the URL), which outlives the widgets: going to
Home and back shows the form as it was. A link's values fill it once, clamped to the public demo's caps with a note.
Choosing a model or preset loads that preset's values. Values are checked by RunConfig, whose message (what is
wrong, what is allowed) is shown with Start disabled: nothing is ignored silently.
"""

from __future__ import annotations

import streamlit as st

from digitlab import config as cfg
from views.ui import limits, plain

PREFIX = "form-"  # widget keys: form-num_epochs, ...
_ORDER = [["num_epochs", "batch_size", "optimizer", "learning_rate", "schedule", "label_smoothing"],
          ["hidden_units", "dropout_rate", "filters", "convs_per_block", "batch_norm"],
          ["train_limit", "validation_split", "early_stopping", "augment", "precision", "seed"]]


def default_preset() -> str:
    """The public demo opens on a preset that fits its caps; your own machine on the product brief's."""
    return "fast" if limits().public else "reference"


def load_form() -> list[str]:
    """Fill the form state on a session's first visit (from the URL, else the default preset); returns notes on
    link values that were ignored or clamped."""
    if "train_form" in st.session_state:
        return []
    url = st.query_params.to_dict()
    model = url.get("model") if url.get("model") in cfg.MODELS else "cnn"
    preset = url.get("preset") if url.get("preset") in cfg.PRESETS else default_preset()
    notes = [f"{key} must be one of {', '.join(allowed)}, got {url[key][:40]!r}" for key, allowed in
             (("model", cfg.MODELS), ("preset", cfg.PRESETS)) if key in url and url[key] not in allowed]
    values, _ = _clamp(cfg.preset(preset, model=model).to_params())  # the preset within the caps: no note, no link
    for name in cfg.FIELDS:
        if name in url and name != "model":
            try:
                cfg.RunConfig.from_params({**values, name: url[name]})
                values[name] = url[name]
            except ValueError as error:
                capped, changes = _capped(name, url[name])
                values[name] = capped if changes else values[name]
                notes.extend(changes or [str(error)])
    _set_form(values, preset=preset, notes=notes)
    return notes


def choose_preset() -> None:
    """on_change of the Model and Preset widgets: load that preset's values into the form."""
    model = st.session_state.get(f"{PREFIX}model") or "cnn"
    preset = st.session_state.get(f"{PREFIX}preset") or default_preset()
    _set_form(cfg.preset(preset, model=model).to_params(), preset=preset, notes=[])
    for name in cfg.FIELDS:  # the widgets show the new values
        st.session_state.pop(PREFIX + name, None)


def _set_form(values: dict, *, preset: str, notes: list[str]) -> None:
    """Store the form (clamped to the caps, with a note for each change)."""
    clamped, changes = _clamp(values)
    notes.extend(changes)
    st.session_state.train_form = {**clamped, "preset": preset}


def capped_preset(config: cfg.RunConfig, preset: str) -> list[str]:
    """What the public demo's caps changed, when `config` is preset `preset` within them (whatever the seed): the
    form then follows no preset exactly, yet the user changed nothing. [] otherwise."""
    capped, changes = _clamp(cfg.preset(preset, model=config.model).to_params())
    unseeded = [{k: v for k, v in params.items() if k != "seed"} for params in (capped, config.to_params())]
    return changes if changes and unseeded[0] == unseeded[1] else []


def _capped(name: str, text: str) -> tuple[int | None, list[str]]:
    """A link's whole number beyond a field's own range, brought within the public demo's caps when they bound that
    field, with the note saying so (as for a value within the range but over a cap): (value, [note]), else
    (None, [])."""
    try:
        number = int(text)
    except ValueError:
        return None, []
    capped, changes = limits().clamp({name: number}) if limits().public else ({}, [])
    return capped.get(name), changes


def _clamp(values: dict) -> tuple[dict, list[str]]:
    """Form values within the caps, and a note for each one changed."""
    config = cfg.RunConfig.from_params(values)
    clamped, changes = limits().clamp({name: getattr(config, name) for name in cfg.FIELDS})
    return cfg.RunConfig(**clamped).to_params(), changes


def widgets() -> tuple[cfg.RunConfig | None, str, str | None]:
    """Draw the form; returns (config or None, preset, the problem that makes it invalid). The preset is "" (custom)
    once any value but the seed differs from the chosen preset's: a run is named after a recipe it follows."""
    form = st.session_state.train_form
    for name in list(cfg.FIELDS) + ["preset"]:  # widgets deleted while on another page come back as they were
        if PREFIX + name not in st.session_state:
            st.session_state[PREFIX + name] = _widget_value(name, form[name])
    top = st.columns([1, 1, 2])
    top[0].segmented_control(cfg.FIELDS["model"].label, cfg.MODELS, key=f"{PREFIX}model", format_func=str.upper,
                             help=cfg.FIELDS["model"].help, on_change=choose_preset)
    top[1].selectbox("Preset", cfg.PRESETS, key=f"{PREFIX}preset", on_change=choose_preset,
                     help="Sets every value below; change any of them afterwards.")
    model = st.session_state[f"{PREFIX}model"] or "cnn"
    values = {"model": model}
    for column, names in zip(st.columns(3), _ORDER):
        with column:
            for name in names:
                field = cfg.FIELDS[name]
                if field.cnn_only and model == "ann":
                    continue  # meaningless for the ANN
                values[name] = _widget(name, field)
    params = {name: _text(value) for name, value in values.items()}
    if params.get("train_limit") == str(cfg.TRAIN_SIZE):
        params["train_limit"] = ""  # all of them, as the presets say it
    st.session_state.train_form = {**form, **params, "preset": st.session_state[f"{PREFIX}preset"]}
    preset = st.session_state.train_form["preset"]
    try:
        config = cfg.RunConfig.from_params(st.session_state.train_form)
        limits().check(config)
    except ValueError as error:
        return None, "", str(error)
    return config, preset if cfg.made_with(config.to_params(), preset, model=config.model) else "", None


def _widget(name: str, field: cfg.Field):
    """One widget for a field; ranges come from the field (and the public demo's caps), never retyped here."""
    key, cap = PREFIX + name, limits()
    common = dict(label=field.label, key=key, help=f"{field.help} Allowed: {field.allowed()}.")
    if name == "num_epochs" and cap.public:
        return st.slider(min_value=1, max_value=cap.max_epochs, **common)
    if name == "batch_size":
        low, high = cap.batch_sizes
        sizes = sorted({s for s in (16, 32, 64, 128, 256, 512) if low <= s <= high} | {st.session_state[key]})
        return st.select_slider(options=sizes, **common)
    if name == "train_limit":
        top = min(cap.max_train_images, cfg.TRAIN_SIZE)
        return st.slider(min_value=1000, max_value=top, step=1000, format="localized", **common)  # 60,000
    if field.kind == "choice":
        return st.selectbox(options=field.choices, **common)
    if field.kind == "bool":
        return st.checkbox(**common)
    if field.kind == "int_list":
        return st.text_input(**common)
    if field.kind == "float" and field.high <= 1 and not field.log:
        return st.slider(min_value=float(field.low), max_value=float(field.high), step=0.05, **common)
    if field.kind == "float":
        return st.number_input(min_value=None, max_value=None, format="%g", step=1e-4, **common)
    # No min_value either: RunConfig checks with a message (with one, a typed -3 stayed in the box, outlined, while
    # the run took the previous value).
    return st.number_input(min_value=None, max_value=None, step=1, **common)


def _widget_value(name: str, text: str):
    """The widget's value for a form string."""
    if name in ("preset", "filters"):
        return text  # a text box shows the text as typed, even when it is not valid (its message says why)
    value = cfg.parse(name, text) if text != "" else None
    if name == "train_limit":
        return value or cfg.TRAIN_SIZE
    if name == "early_stopping":
        return value or 0
    return value


def _text(value) -> str:
    """A widget's value → the form's string (as in the URL)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1:
        return str(int(value))
    return "" if value is None else str(value)


def mirror_in_url(job_id: str | None) -> None:
    """The form (and the followed job) in the URL, so a link reproduces them; only when it changed."""
    wanted = {**st.session_state.train_form, **({"job": job_id} if job_id else {})}
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)


def show_notes(notes: list[str]) -> None:
    for note in notes:
        st.warning(plain(f"From the link: {cfg.in_words(note)}"), icon=":material/link:")
