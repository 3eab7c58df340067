"""Run inside the axolotl venv: axolotl's own validation of rendered configs, one JSON line each.

    python tests/support/axolotl_validate.py CAPABILITIES_JSON CONFIG.yaml...

`axolotl.utils.config.validate_config` with the target GPU's capabilities (what `axolotl train`
does after probing the GPU), then `normalize_config` against the architecture's default config
from transformers (Llama4Config is the Scout's), since there is no model hub here. Imports only
axolotl, transformers and yaml: the project is not installed in this venv.
"""

from __future__ import annotations

import json
import sys
import tempfile
import traceback


def check(path: str, capabilities: dict) -> dict:
    import transformers
    import yaml
    from axolotl.utils.config import normalize_config, validate_config
    from axolotl.utils.dict import DictDefault

    with open(path) as fh:
        cfg = DictDefault(yaml.safe_load(fh))
    try:
        env = {"torch_version": __import__("torch").__version__.split("+")[0]}
        cfg = validate_config(cfg, capabilities=capabilities, env_capabilities=env)
        if cfg.type_of_model:
            local = tempfile.mkdtemp()
            getattr(transformers, cfg.type_of_model).config_class().save_pretrained(local)
            cfg.base_model_config = local
            normalize_config(cfg)
    except Exception as err:  # every rejection is reported, one line per config
        return {"path": path, "ok": False, "error": f"{type(err).__name__}: {err}"[:2000],
                "where": traceback.format_exc(limit=-1)[-400:]}  # fmt: skip
    keep = ("type_of_model", "model_config_type", "adapter", "load_in_4bit", "llama4_linearized_experts",
            "lora_target_modules", "attn_implementation", "gradient_checkpointing", "activation_offloading",
            "chat_template", "special_tokens", "is_multimodal")  # fmt: skip
    return {"path": path, "ok": True, "config": {k: cfg.get(k) for k in keep}}


def main() -> None:
    capabilities = json.loads(sys.argv[1])
    for path in sys.argv[2:]:
        print(json.dumps(check(path, capabilities), default=str), flush=True)


if __name__ == "__main__":
    main()
