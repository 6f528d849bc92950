"""Property-based tests over the configuration space: any value either builds a valid
config or raises one ConfigError that names the parameter; nothing else escapes."""
import dataclasses
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from implicitreg.engine.config import ConfigError, RunConfig

FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}
anything = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.tuples(st.integers(-5, 5000)), st.lists(st.integers(0, 100), max_size=3),
)


@settings(max_examples=400, deadline=None)
@given(name=st.sampled_from(sorted(FIELDS)), value=anything)
def test_any_single_value_is_accepted_or_rejected_by_name(name, value):
    try:
        cfg = RunConfig(**{name: value})
    except ConfigError as exc:
        assert name in str(exc)
        return
    # accepted: the config round-trips and re-validates
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.lr > 0 and math.isfinite(cfg.lr)
    assert 0 <= cfg.label_noise <= 1


valid = st.fixed_dictionaries({
    "lr": st.floats(1e-4, 10), "batch_size": st.integers(1, 512),
    "micro_batch": st.integers(1, 512), "label_noise": st.floats(0, 1),
    "reg": st.sampled_from(["none", "gd-modified", "sgd-modified"]),
    "method": st.sampled_from(["sgd", "sgd-replacement", "gd"]),
    "reg_scale": st.floats(0, 10), "momentum": st.floats(0, 0.99),
})


@settings(max_examples=300, deadline=None)
@given(values=valid)
def test_combinations_are_consistent_when_accepted(values):
    try:
        cfg = RunConfig(**values)
    except ConfigError as exc:
        # the only cross-field rule among these: b must divide B for SGD's penalty
        assert "micro_batch" in str(exc)
        assert values["reg"] == "sgd-modified" and values["method"] != "gd"
        assert values["batch_size"] % values["micro_batch"] != 0
        return
    if cfg.reg == "sgd-modified" and cfg.method != "gd":
        assert cfg.batch_size % cfg.micro_batch == 0
    assert cfg.reg_lambda == cfg.reg_scale * cfg.lr / 4
