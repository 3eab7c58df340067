"""The redaction helpers, with hand-checked values."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from jobs.classify.answer import TokenLogprob, redact_tokens
from launcher.tracking.wandb_mode import (
    REDACTED,
    redact_data,
    redact_env,
    redact_pieces,
    redact_text,
    secret_values,
)


def test_redaction_helpers() -> None:
    env = {"WANDB_API_KEY": "abcd1234", "HF_TOKEN": "hf_xyz123", "PATH": "/bin", "AWS_SESSION_TOKEN": "tok0"}
    assert redact_env(env) == {"WANDB_API_KEY": REDACTED, "HF_TOKEN": REDACTED, "PATH": "/bin",
                               "AWS_SESSION_TOKEN": REDACTED}  # fmt: skip
    assert redact_text("key=abcd1234 token hf_xyz123 /bin", env) == f"key={REDACTED} token {REDACTED} /bin"


def test_one_text_in_pieces_is_redacted_as_the_joined_text() -> None:
    """A secret cut across pieces (an answer's tokens) is REDACTED in the piece where it starts and
    cut from the rest; overlapping or adjacent secrets leave no part of either."""
    one = ["abcd1234"]
    assert redact_pieces(["key=ab", "cd12", "34 end"], secrets=one) == ["key=***", "", " end"]
    assert redact_pieces(["ab", "cd1234", ""], secrets=one) == ["***", "", ""]
    assert redact_pieces(["no", " secret"], secrets=one) == ["no", " secret"]
    two = ["1234wxyz", "abcd1234"]
    assert redact_text("xabcd1234wxyzx", secrets=two) == "x***x"  # replacing one after the other left "wxyz"
    assert redact_text("abcd1234abcd1234", secrets=one) == "***"
    assert redact_text("key=abcd1234", {"MY_TOKEN": "abcd1234"}) == "key=***"


def test_secret_values_and_data() -> None:
    env = {"A_TOKEN": "tok0", "PATH": "/bin", "X_KEY": "abc"}
    assert secret_values(env, also=["sk-longer", "tok0", "ab"]) == ["sk-longer", "tok0"]  # >= 4, no repeat
    data = {"a": ["x abcd1234", 3, None, 1.5], "abcd1234": True}
    assert redact_data(data, secrets=["abcd1234"]) == {"a": ["x ***", 3, None, 1.5], "***": True}


def test_an_answers_tokens_are_redacted_with_their_alternatives() -> None:
    tokens = [TokenLogprob("ok ab", -0.1, (("ok ab", -0.1), ("ok", -3.0))), TokenLogprob("cd1234", -0.2),
              TokenLogprob("!", 0.0, (("!", 0.0), ("abcd1234", -9.0)))]  # fmt: skip
    redacted = redact_tokens(tokens, ["abcd1234"])
    assert [t.token for t in redacted] == ["ok ***", "", "!"]
    assert redacted[0].top == (("ok ***", -0.1), ("ok", -3.0)) and redacted[1].logprob == -0.2
    assert redacted[2].top == (("!", 0.0), ("***", -9.0))
    assert redact_tokens(tokens[:1], ["zzzz9999"])[0] is tokens[0]


def test_code_diff_is_redacted_of_the_environments_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """code.diff holds the uncommitted changes a run was submitted with: a key pasted into a tracked
    file, and also in the environment, is not written into the run directory."""
    from launcher.runs import code

    key = "wk-0123456789abcdef0123456789abcdef"
    monkeypatch.setenv("WANDB_API_KEY", key)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "train.py").write_text("KEY = None\n")
    subprocess.run([*git, "add", "train.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "first"], check=True)
    (tmp_path / "train.py").write_text(f"KEY = '{key}'\n")
    state = code.git_state.__wrapped__(tmp_path)
    assert state is not None and state.dirty and state.diff is not None
    assert "KEY = '" in state.diff and key[:10] not in state.diff
