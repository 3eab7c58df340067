"""The llama.cpp server of the classify tests (tests.support.llm_server)."""
