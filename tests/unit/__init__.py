"""In-process tests: no service, no `launch` or job process, no model training (the whole folder
runs in well under a minute: `python -m pytest tests/unit -q`)."""
