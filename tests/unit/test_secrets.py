"""The redaction helpers, with hand-checked values."""

from __future__ import annotations

from launcher.tracking.wandb_mode import REDACTED, redact_env, redact_text


def test_redaction_helpers() -> None:
    env = {"WANDB_API_KEY": "abcd1234", "HF_TOKEN": "hf_xyz123", "PATH": "/bin", "AWS_SESSION_TOKEN": "tok0"}
    assert redact_env(env) == {"WANDB_API_KEY": REDACTED, "HF_TOKEN": REDACTED, "PATH": "/bin",
                               "AWS_SESSION_TOKEN": REDACTED}  # fmt: skip
    assert redact_text("key=abcd1234 token hf_xyz123 /bin", env) == f"key={REDACTED} token {REDACTED} /bin"
