# SPDX-License-Identifier: MIT
"""Looking into a live process from the outside: its memory (/proc/PID/maps + /proc/PID/mem),
its CPU time (/proc/PID/stat) and its limits (/proc/PID/limits).

Used by test_memory.py (no plaintext secret in the daemon's memory) and test_hostile.py
(the daemon does not spin). Reading another process's memory needs root, or the same uid
and a dumpable process; the daemon is not dumpable, so the memory tests run as root (with
CAP_SYS_PTRACE) and skip otherwise.
"""

import os
import re

# Mappings the kernel never lets anyone read through /proc/PID/mem.
UNREADABLE_OK = ("[vvar]", "[vvar_vclock]", "[vsyscall]")

PAGE = os.sysconf("SC_PAGE_SIZE")

_MAPS_RE = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$")


class Region:
    """One mapping of /proc/PID/maps and the bytes read from it (None if unreadable)."""

    def __init__(self, start, end, perms, name):
        self.start, self.end, self.perms, self.name = start, end, perms, name
        self.data = None
        self.pages_unread = 0
        self.rss_kb = self.swap_kb = None
        self.skipped = None  # why the mapping was not read, if it was not

    def __repr__(self):
        return "%x-%x %s %s" % (self.start, self.end, self.perms, self.name or "[anon]")


def regions(pid):
    """Returns the mappings of process pid as Regions, without their bytes, each with
    rss_kb and swap_kb from /proc/PID/smaps."""
    out = []
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            m = _MAPS_RE.match(line.rstrip("\n"))
            if m:
                out.append(Region(int(m.group(1), 16), int(m.group(2), 16), m.group(3),
                                  m.group(4)))
            elif line.startswith("Rss:") and out:
                out[-1].rss_kb = int(line.split()[1])
            elif line.startswith("Swap:") and out:
                out[-1].swap_kb = int(line.split()[1])
    return out


def _is_asan_shadow(r, regs):
    """True for AddressSanitizer's shadow memory on x86-64 (bytes describing other bytes,
    never program data): terabytes that could not be read anyway."""
    asan = any("libasan" in x.name for x in regs)
    return asan and r.name == "" and 0x7fff8000 <= r.start and r.end <= 0x10007fff8000 \
        and r.end - r.start >= 1 << 28


def read_memory(pid, all_mappings=False):
    """Reads the mappings of pid through /proc/PID/mem. Returns the Regions: readable ones
    ("r" in their permissions), or every mapping when all_mappings (the kernel lets a
    ptrace-capable reader see PROT_NONE memory too, e.g. libsodium's guard pages and a key
    made noaccess). A mapping that fails as a whole is read page by page; pages that still
    fail are counted in pages_unread.

    Not read (r.skipped says why): anonymous mappings with no page resident or swapped
    (they hold nothing but zeroes; sanitizer builds reserve terabytes of them), and, only in
    an AddressSanitizer build, its shadow memory."""
    all_regs = regions(pid)
    regs = [r for r in all_regs if all_mappings or "r" in r.perms]
    fd = os.open("/proc/%d/mem" % pid, os.O_RDONLY)
    try:
        for r in regs:
            size = r.end - r.start
            if r.end > 1 << 63:  # [vsyscall]: beyond what pread's offset can name
                r.pages_unread = size // PAGE
                continue
            anon = not r.name.startswith("/")
            if anon and r.rss_kb == 0 and r.swap_kb == 0:
                r.skipped = "nothing resident"
                continue
            if _is_asan_shadow(r, all_regs):
                r.skipped = "AddressSanitizer shadow"
                continue
            try:
                r.data = os.pread(fd, size, r.start)
                if len(r.data) == size:
                    continue
            except OSError:
                pass
            parts = []
            for addr in range(r.start, r.end, PAGE):
                try:
                    chunk = os.pread(fd, PAGE, addr)
                except OSError:
                    chunk = b""
                if len(chunk) != PAGE:
                    r.pages_unread += 1
                    chunk = b"\0" * PAGE
                parts.append(chunk)
            r.data = b"".join(parts) if r.pages_unread < len(parts) else None
    finally:
        os.close(fd)
    return regs


def unread_regions(regs):
    """Returns the readable mappings that could not be read (wholly or in part), apart from
    the ones the kernel never shows ([vvar], [vsyscall])."""
    return [r for r in regs if "r" in r.perms and r.name not in UNREADABLE_OK
            and not r.skipped and (r.data is None or r.pages_unread)]


def _as_bytes(s):
    return s.encode() if isinstance(s, str) else bytes(s)


def find_fragments(blobs, secrets, window=24):
    """Looks for every secret, and every window-byte piece of one, in blobs.

    blobs: iterable of (label, bytes). secrets: dict name -> str/bytes.
    Returns a list of (secret name, blob label, offset in blob, length of the longest common
    run around the hit, >= window), at most one per place found.

    Any window-byte substring of a secret contains one of the secret's pieces of
    window // 2 bytes that start at a multiple of window // 2; each such piece is looked
    for with bytes.find, and every hit is grown both ways to see whether window bytes or
    more of the secret surround it."""
    half = window // 2
    hits = []
    blobs = [(label, data) for label, data in blobs if data]
    for name, secret in secrets.items():
        s = _as_bytes(secret)
        if len(s) < window:
            raise ValueError("secret %s is shorter than the window" % name)
        seen = set()
        for q in range(0, len(s) - half + 1, half):
            piece = s[q:q + half]
            for label, data in blobs:
                p = data.find(piece)
                while p >= 0:
                    left = 0
                    while (left < q and p - left - 1 >= 0
                           and data[p - left - 1] == s[q - left - 1]):
                        left += 1
                    right = 0
                    while (q + half + right < len(s) and p + half + right < len(data)
                           and data[p + half + right] == s[q + half + right]):
                        right += 1
                    length = left + half + right
                    key = (label, p - left)
                    if length >= window and key not in seen:
                        seen.add(key)
                        hits.append((name, label, p - left, length))
                    p = data.find(piece, p + 1)
    return hits


def scan_process(pid, secrets, window=24, all_mappings=True):
    """Reads pid's memory and looks for secrets in it. Returns (hits, regions)."""
    regs = read_memory(pid, all_mappings=all_mappings)
    hits = find_fragments(((repr(r), r.data) for r in regs), secrets, window)
    return hits, regs


def describe_hits(hits, limit=10):
    return "\n".join("  %s: %d bytes at +%#x of %s" % (name, n, off, label)
                     for name, label, off, n in hits[:limit])


def cpu_seconds(pid):
    """Returns the user + system CPU time process pid has used, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        text = f.read()
    fields = text[text.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def limit(pid, name):
    """Returns the (soft, hard) strings of the /proc/PID/limits row whose name starts with
    name, e.g. limit(pid, "Max core file size") -> ("0", "0")."""
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith(name):
                parts = line[len(name):].split()
                return parts[0], parts[1]
    raise KeyError(name)


def open_fds(pid):
    """Returns the number of file descriptors process pid has open."""
    return len(os.listdir("/proc/%d/fd" % pid))
