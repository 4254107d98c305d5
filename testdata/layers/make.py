#!/usr/bin/env python3
"""Generate the crafted (mostly malicious) layer archives used by layers/tests/unpack_*.rs.

Run from anywhere: `python3 testdata/layers/make.py`. Output is deterministic (tar mtimes 0,
gzip mtime 0, no file name), so re-running it leaves git clean. Each archive is named after the
reliability.md case it exercises; the comments in main() say what each one contains.

tarfile writes names verbatim (absolute paths, `..`, empty names), which is what we want; where it
refuses (negative sizes, truncation) the raw header bytes are patched.
"""
import gzip
import io
import os
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))


def info(name, kind=tarfile.REGTYPE, data=b"", mode=0o644, link="", uid=0, gid=0, mtime=0,
         devmajor=0, devminor=0, pax=None):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.uid, ti.gid = uid, gid
    ti.mtime = mtime
    ti.linkname = link
    ti.devmajor, ti.devminor = devmajor, devminor
    ti.size = len(data) if kind in (tarfile.REGTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.XHDTYPE) else 0
    if pax:
        ti.pax_headers = pax
    return ti, data


def tar_bytes(members, fmt=tarfile.GNU_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for ti, data in members:
            tf.addfile(ti, io.BytesIO(data) if data else None)
    return buf.getvalue()


def gz(raw):
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as f:
        f.write(raw)
    return out.getvalue()


def write(name, raw, compress=True):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(gz(raw) if compress else raw)


def raw_header(name, size_field, kind=b"0"):
    """A ustar-ish header block with an arbitrary 12-byte size field."""
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108] = b"0000644\0"
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = size_field
    h[136:148] = b"00000000000\0"
    h[156:157] = kind
    h[257:263] = b"ustar\0"
    h[263:265] = b"00"
    h[148:156] = b"        "
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def dir_(name, mode=0o755, **kw):
    return info(name, tarfile.DIRTYPE, mode=mode, **kw)


def sym(name, target, **kw):
    return info(name, tarfile.SYMTYPE, link=target, mode=0o777, **kw)


def hard(name, target):
    return info(name, tarfile.LNKTYPE, link=target)


def main():
    pwn = b"pwned\n"
    # 1: `..`, absolute and backslash names.
    write("case01_dotdot_absolute.tar.gz", tar_bytes([
        info("../host/canary", data=pwn),
        info("a/../../../host/escape-dotdot", data=pwn),
        info("/abs-escape", data=pwn),
        info("..\\..\\host\\escape-backslash", data=pwn),
    ]))
    # 2: writing through symlinks that point out of the root.
    write("case02_etc_absolute_symlink.tar.gz", tar_bytes([
        sym("etc", "/etc"),
        info("etc/pyslip-escape-case02", data=pwn),
    ]))
    write("case02_dotdot_symlink.tar.gz", tar_bytes([
        sym("up", "../../.."),
        info("up/host/canary", data=pwn),
        info("up/written-via-up", data=pwn),
    ]))
    write("case02_absolute_dir_symlink.tar.gz", tar_bytes([
        sym("abs", "/tmp"),
        info("abs/pyslip-escape-case02-abs", data=pwn),
    ]))
    write("case02_lower_plants_symlink.tar.gz", tar_bytes([sym("escape", "../../../..")]))
    write("case02_upper_writes_through.tar.gz", tar_bytes([
        info("escape/host/canary", data=pwn),
    ]))
    # 3: a symlink later replaced by a directory of the same name.
    write("case03_symlink_then_dir.tar.gz", tar_bytes([
        sym("d", "/tmp/pyslip-layers-case03"),
        dir_("d"),
        info("d/canary", data=pwn),
    ]))
    # 4: an entry that creates directories through an escaping symlink, then fails (truncated).
    raw = tar_bytes([
        sym("out", ".."),
        info("out/made-by-case04/sub/file", data=b"x" * 4096),
    ])
    # Cut inside the file data: header blocks (2 x 512 for the two entries) + 1000 data bytes.
    write("case04_mkdir_then_fail.tar.gz", raw[:1024 + 1000])
    # 5: chmod/utimes through a symlink to a host file.
    target = "/tmp/pyslip-layers-case05/canary"
    write("case05_chmod_through_symlink.tar.gz", tar_bytes([
        dir_("d", mode=0o000, mtime=1),
        sym("d", target, mtime=1),
        info("f", data=b"f", mode=0o600, mtime=1),
        sym("f", target, mtime=1),
        sym("s", target, mtime=1),
        dir_("s", mode=0o000, mtime=1),
        sym("s", target, mtime=1),
    ]))
    # 6: hardlinks to absolute / escaping targets.
    write("case06_hardlink_absolute.tar.gz", tar_bytes([
        hard("hl", "/tmp/pyslip-layers-case06/canary"),
    ]))
    write("case06_hardlink_dotdot.tar.gz", tar_bytes([
        hard("hl", "../../../../tmp/pyslip-layers-case06/canary"),
    ]))
    write("case06_hardlink_via_symlink.tar.gz", tar_bytes([
        sym("esc", "/tmp/pyslip-layers-case06"),
        hard("hl", "esc/canary"),
    ]))
    write("case06_hardlink_inside.tar.gz", tar_bytes([
        info("inside", data=b"inside\n"),
        hard("hl", "/inside"),
        hard("hl2", "../../inside"),
    ]))
    # 7: a link followed by a regular file of the same name.
    write("case07_link_then_file.tar.gz", tar_bytes([
        sym("f", "/tmp/pyslip-layers-case07/canary"),
        info("f", data=pwn),
        info("inside", data=b"orig\n"),
        hard("h", "inside"),
        info("h", data=pwn),
    ]))
    # 8: entries for the root itself.
    write("case08_root_dir_entry.tar.gz", tar_bytes([
        dir_("./", mode=0o000), dir_("/", mode=0o700), info("ok", data=b"ok"),
    ]))
    write("case08_root_symlink.tar.gz", tar_bytes([sym(".", "/tmp")]))
    write("case08_root_file.tar.gz", tar_bytes([info("/", data=pwn)]))
    empty = raw_header(b"", b"00000000000\0") + bytes(1024)
    write("case08_root_empty_name.tar.gz", empty)
    # 9: whiteouts.
    write("case09_lower.tar.gz", tar_bytes([
        dir_("a"), info("a/keep", data=b"k"), info("a/gone", data=b"g"),
        dir_("dir"), info("dir/old", data=b"o"), dir_("dir/sub"), info("dir/sub/old2", data=b"o"),
        dir_("dir2"), info("dir2/old", data=b"o"), dir_("dir2/kept"), info("dir2/kept/old", data=b"o"),
        info("other", data=b"x"),
    ]))
    write("case09_upper.tar.gz", tar_bytes([
        dir_("a"), info("a/.wh.gone"),
        dir_("dir"), info("dir/.wh..wh..opq"), info("dir/new", data=b"n"),
        info(".wh.nothing-here"),
        # This layer's own content written *before* the opaque marker must survive it.
        dir_("dir2"), info("dir2/kept/new", data=b"n"), info("dir2/.wh..wh..opq"),
        info(".wh..wh..plnk"),
    ]))
    for i, name in enumerate([".wh.", "x/.wh..", ".wh..."]):
        write(f"case09_malformed_{i}.tar.gz", tar_bytes([info(name)]))
    # 10: bounded parsing.
    write("case10_huge_gnu_longname.tar.gz",
          tar_bytes([info("././@LongLink", tarfile.GNUTYPE_LONGNAME, data=b"a" * (2 << 20))]))
    write("case10_huge_pax_header.tar.gz",
          tar_bytes([info("pax", tarfile.XHDTYPE, data=b"a" * (2 << 20))]))
    write("case10_negative_size.tar.gz",
          raw_header(b"neg", b"\xff" * 12) + bytes(1024))
    write("case10_huge_size.tar.gz",
          raw_header(b"huge", b"77777777777\0") + b"x" * 512)
    raw = tar_bytes([info("file", data=b"y" * 10000)])
    write("case10_truncated_tar.tar.gz", raw[:700])
    full = gz(tar_bytes([info("file", data=os.urandom(0) + bytes(range(256)) * 200)]))
    write("case10_truncated_gzip.tar.gz", full[: len(full) // 2], compress=False)
    write("case10_gzip_bomb.tar.gz", tar_bytes([info("zeros", data=bytes(64 << 20))]))
    # 11: rootless-hostile entries.
    write("case11_rootless_hostile.tar.gz", tar_bytes([
        dir_("dev"),
        info("dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3),
        info("dev/sda", tarfile.BLKTYPE, mode=0o660, devmajor=8, devminor=0),
        info("fifo", tarfile.FIFOTYPE, mode=0o644),
        info("owned", data=b"owned\n", uid=12345, gid=54321),
        info("xattrs", data=b"x\n", pax={
            "SCHILY.xattr.user.pyslip": "v",
            "SCHILY.xattr.security.capability": "\x01\x00\x00\x02",
        }),
        dir_("locked", mode=0o000),
        info("locked/child", data=b"c\n"),
        dir_("locked/sub", mode=0o555),
    ], fmt=tarfile.PAX_FORMAT))


if __name__ == "__main__":
    main()
