"""The README flows, whole: the bare install in a fresh virtualenv, the main job and its next steps."""
