"""The research's recipes and cluster profiles, shipped inside the package as built-ins.

`recipes/` and `cluster/` here are links to the repository's top-level `recipes/` and `cluster/`
(the project's layout keeps them there); building a wheel copies the files they lead to
(pyproject.toml's package-data: every recipe, the profiles at the top of `cluster/`, not the dev
cluster's scripts). `launcher.paths` reads them with importlib.resources, after the current
project's and $LAUNCH_HOME's. No modules: data only.
"""
