"""A real Ray head on loopback (tests.support.ray_head); every test here is marked `ray`."""
