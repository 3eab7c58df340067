"""Which filesystem holds a path: a network one (NFS, Lustre, GPFS, SMB, BeeGFS, 9p, FUSE, ...), where
SQLite's WAL cannot work (its shared memory is not shared between hosts), or a local one.

The kernel says it two ways: statfs(2)'s `f_type` (read through ctypes: `os.statvfs` lacks it) and
the type column of /proc/self/mountinfo (the longest mount point that holds the path). Either one
naming a network filesystem is enough. `LAUNCH_REGISTRY_FS=network|local` overrides both.
"""

from __future__ import annotations

import os
from pathlib import Path

NETWORK_MAGIC: dict[int, str] = {
    0x6969: "nfs",
    0x0BD00BD0: "lustre",
    0x47504653: "gpfs",
    0xFF534D42: "cifs",
    0xFE534D42: "smb2",
    0x517B: "smbfs",
    0x19830326: "beegfs",
    0x01021997: "9p",
    0x65735546: "fuse",
    0x00C36400: "ceph",
    0x5346414F: "afs",
    0x7461636F: "ocfs2",
    0x01161970: "gfs2",
    0xAAD7AAEA: "panfs",
}
"""statfs f_type values of network (or userspace: FUSE) filesystems."""

NETWORK_TYPES = frozenset(
    {"nfs", "nfs4", "lustre", "gpfs", "cifs", "smb3", "smbfs", "beegfs", "9p", "fuse", "ceph",
     "afs", "ocfs2", "gfs2", "panfs", "glusterfs", "davfs", "orangefs", "pvfs2", "cvfs", "wekafs"}
)  # fmt: skip
"""mountinfo type names of network filesystems; `fuse.*` (sshfs, glusterfs, s3fs, ...) too."""

ENV = "LAUNCH_REGISTRY_FS"


def _unescape(field: str) -> str:
    """Mount points in mountinfo escape space, tab, newline and backslash as octal (`\\040`)."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def parse_mounts(text: str) -> list[tuple[str, str]]:
    """(mount point, type) of each line of /proc/self/mountinfo (`... - TYPE SOURCE OPTS`) or of
    /proc/mounts (`SOURCE POINT TYPE OPTS 0 0`); lines of neither shape are skipped."""
    out = []
    for line in text.splitlines():
        fields = line.split()
        if " - " in line and len(fields) >= 7:
            before, after = line.split(" - ", 1)
            head, tail = before.split(), after.split()
            if len(head) >= 5 and tail:
                out.append((_unescape(head[4]), tail[0]))
        elif len(fields) >= 3:
            out.append((_unescape(fields[1]), fields[2]))
    return out


def mount_type(path: str, mounts: list[tuple[str, str]]) -> str | None:
    """The type of the mount that holds the absolute `path`: the longest mount point that is it
    or one of its parents (the last such line wins: a later mount hides an earlier one)."""
    best: tuple[int, str] | None = None
    for point, kind in mounts:
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= best[0]):
            best = (len(point), kind)
    return best[1] if best else None


def is_network_type(kind: str | None) -> bool:
    return kind is not None and (kind in NETWORK_TYPES or kind.startswith("fuse."))


def statfs_type(path: Path) -> int | None:
    """statfs(2)'s f_type of `path` (Linux: the first word of struct statfs); None elsewhere."""
    if os.uname().sysname != "Linux":
        return None
    import ctypes  # here: every verb opens the registry, few need ctypes otherwise

    try:  # the process's own symbols hold libc's (find_library would run `ldconfig -p`: slow)
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    buf = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes on 64-bit Linux
    if libc.statfs(os.fsencode(path), buf) != 0:
        return None
    return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF


def network_fs(path: Path, mounts_text: str | None = None) -> str | None:
    """The name of the network filesystem that holds `path` (an existing directory), or None for a
    local one. `mounts_text`: a mountinfo text to read instead of this machine's (tests)."""
    forced = os.environ.get(ENV, "").strip().lower()
    if forced in ("network", "local"):
        return "network (LAUNCH_REGISTRY_FS)" if forced == "network" else None
    magic = statfs_type(path) if mounts_text is None else None
    if magic in NETWORK_MAGIC:
        return NETWORK_MAGIC[magic]
    if mounts_text is None:
        try:
            mounts_text = Path("/proc/self/mountinfo").read_text()
        except OSError:
            return None
    kind = mount_type(os.path.realpath(path), parse_mounts(mounts_text))
    return kind if is_network_type(kind) else None
