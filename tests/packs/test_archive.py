"""Reading packs is strict: data files only, nothing that escapes the pack folder, size limits,
https only, SHA-256 pinning. Building is reproducible."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine.packs.archive import (
    MAX_FILE_BYTES,
    MAX_FILES,
    PackError,
    PackFiles,
    build_archive,
    fetch,
    read_archive,
    read_folder,
    read_source,
    sha256,
)
from tests.packs.conftest import PackWriter

MANIFEST = b"name: demo\nversion: 1.0.0\n"


def tar_gz(*entries: tarfile.TarInfo | tuple[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                archive.addfile(entry)
            else:
                info = tarfile.TarInfo(entry[0])
                info.size = len(entry[1])
                archive.addfile(info, io.BytesIO(entry[1]))
    return raw.getvalue()


def special(name: str, kind: bytes, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def zipped(*entries: tuple[str, bytes] | zipfile.ZipInfo, data: bytes = b"x") -> bytes:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as archive:
        for entry in entries:
            if isinstance(entry, zipfile.ZipInfo):
                archive.writestr(entry, data)
            else:
                archive.writestr(*entry)
    return raw.getvalue()


def test_build_is_reproducible_and_reads_back(make_pack: PackWriter) -> None:
    files = read_folder(make_pack())
    assert sorted(files.files) == [
        "README.md",
        "pack.yaml",
        "recipes/log.yaml",
        "templates/stock-alert.yaml",
    ]
    first, second = (
        build_archive(files, "demo-1.0.0"),
        build_archive(PackFiles(dict(reversed(files.files.items()))), "demo-1.0.0"),
    )
    assert first == second
    assert sha256(first) == sha256(second)
    assert read_archive(first) == files  # the one top folder is taken off
    with tarfile.open(fileobj=io.BytesIO(first)) as archive:
        assert all(m.mtime == 0 and m.uid == 0 and m.mode == 0o644 for m in archive.getmembers())
        assert archive.getnames()[0] == "demo-1.0.0/README.md"


def test_zip_packs_read_like_tar_packs(make_pack: PackWriter) -> None:
    files = read_folder(make_pack())
    data = zipped(*((f"demo/{p}", d) for p, d in files.files.items()))
    assert read_archive(data) == files


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (tar_gz(("pack.yaml", MANIFEST), ("../evil.yaml", b"x")), "'..' leaves the pack folder"),
        (
            tar_gz(("pack.yaml", MANIFEST), ("/etc/evil.yaml", b"x")),
            "absolute paths leave the pack folder",
        ),
        (
            tar_gz(("pack.yaml", MANIFEST), ("C:/evil.yaml", b"x")),
            "absolute paths leave the pack folder",
        ),
        (tar_gz(("pack.yaml", MANIFEST), ("a\\b.yaml", b"x")), "backslashes"),
        (
            tar_gz(("pack.yaml", MANIFEST), special("link.yaml", tarfile.SYMTYPE, "/etc/passwd")),
            "links are not allowed",
        ),
        (
            tar_gz(("pack.yaml", MANIFEST), special("hard.yaml", tarfile.LNKTYPE, "pack.yaml")),
            "links are not allowed",
        ),
        (tar_gz(("pack.yaml", MANIFEST), special("dev.yaml", tarfile.CHRTYPE)), "not a plain file"),
        (
            tar_gz(("pack.yaml", MANIFEST), special("fifo.yaml", tarfile.FIFOTYPE)),
            "not a plain file",
        ),
        (
            tar_gz(("pack.yaml", MANIFEST), ("hook.py", b"import os")),
            "only .yaml, .yml, .json and .md",
        ),
        (
            tar_gz(("pack.yaml", MANIFEST), ("big.yaml", b"x" * (MAX_FILE_BYTES + 1))),
            "larger than 1 MB",
        ),
        (tar_gz(("README.md", b"# no manifest")), "no pack.yaml"),
        (tar_gz(("a/pack.yaml", MANIFEST), ("b/x.yaml", b"x")), "no pack.yaml"),
        (
            tar_gz(*((f"f{i}.yaml", b"x") for i in range(MAX_FILES + 1))),
            f"at most {MAX_FILES} files",
        ),
        (zipped(("pack.yaml", MANIFEST), ("../../evil.yaml", b"x")), "'..' leaves the pack folder"),
        (
            zipped(("pack.yaml", MANIFEST), ("run.sh", b"rm -rf /")),
            "only .yaml, .yml, .json and .md",
        ),
        (b"not an archive", "expected a .tar.gz or a .zip"),
        (b"\x1f\x8b broken", "not a readable .tar.gz"),
    ],
)
def test_dangerous_or_unfit_archives_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(PackError, match=message.replace(".", r"\.").replace("(", r"\(")):
        read_archive(data)


def test_zip_symlinks_and_devices_are_refused() -> None:
    link = zipfile.ZipInfo("link.yaml")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with pytest.raises(PackError, match="links are not allowed"):
        read_archive(zipped(("pack.yaml", MANIFEST), link, data=b"/etc/passwd"))
    device = zipfile.ZipInfo("dev.yaml")
    device.external_attr = (stat.S_IFCHR | 0o600) << 16
    with pytest.raises(PackError, match="not a plain file"):
        read_archive(zipped(("pack.yaml", MANIFEST), device))


def test_folder_links_and_code_are_refused(make_pack: PackWriter, tmp_path: Path) -> None:
    root = make_pack()
    os.symlink("/etc/passwd", root / "templates" / "passwd.yaml")
    with pytest.raises(PackError, match="links are not allowed"):
        read_folder(root)
    (root / "templates" / "passwd.yaml").unlink()
    (root / "setup.py").write_text("print('hi')")
    with pytest.raises(PackError, match=r"refused setup\.py"):
        read_folder(root)
    with pytest.raises(PackError, match=r"has no pack\.yaml"):
        read_folder(tmp_path)


def test_sha256_pinning(make_pack: PackWriter, tmp_path: Path) -> None:
    root = make_pack()
    archive = tmp_path / "demo.tar.gz"
    archive.write_bytes(build_archive(read_folder(root), "demo-1.0.0"))
    digest = sha256(archive.read_bytes())
    assert read_source(archive, pin=digest).sha256 == digest
    assert (
        read_source(root, pin=f"sha256:{digest.upper()}").sha256 == digest
    )  # a folder hashes as its build
    with pytest.raises(PackError, match="SHA-256 mismatch"):
        read_source(archive, pin="0" * 64)
    with pytest.raises(PackError, match="is not a SHA-256"):
        read_source(archive, pin="abc")


def serve(routes: dict[str, httpx.Response]) -> httpx.MockTransport:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return routes.get(str(request.url), httpx.Response(404))

    transport = httpx.MockTransport(handler)
    transport.seen = seen  # type: ignore[attr-defined]
    return transport


def test_download_over_https_with_redirects(make_pack: PackWriter) -> None:
    data = build_archive(read_folder(make_pack()), "demo-1.0.0")
    transport = serve(
        {
            "https://packs.example/demo": httpx.Response(
                302, headers={"Location": "/files/demo.tar.gz"}
            ),
            "https://packs.example/files/demo.tar.gz": httpx.Response(200, content=data),
        }
    )
    source = read_source("https://packs.example/demo", pin=sha256(data), transport=transport)
    assert source.sha256 == sha256(data)
    assert "templates/stock-alert.yaml" in source.files.files


@pytest.mark.parametrize(
    ("url", "routes", "message"),
    [
        ("http://packs.example/demo.tar.gz", {}, "https only"),
        ("file:///etc/passwd", {}, "https only"),
        (
            "https://packs.example/a",
            {
                "https://packs.example/a": httpx.Response(
                    301, headers={"Location": "http://packs.example/b"}
                )
            },
            "https only",
        ),
        (
            "https://packs.example/a",
            {"https://packs.example/a": httpx.Response(302, headers={"Location": "/a"})},
            "more than 5 redirects",
        ),
        ("https://packs.example/a", {}, "answered 404"),
        (
            "https://packs.example/a",
            {
                "https://packs.example/a": httpx.Response(
                    200, headers={"Content-Length": "99999999"}, content=b""
                )
            },
            "larger than",
        ),
    ],
)
def test_downloads_that_are_refused(
    url: str, routes: dict[str, httpx.Response], message: str
) -> None:
    with pytest.raises(PackError, match=message):
        read_source(url, transport=serve(routes))


def test_streamed_download_is_capped_without_a_length() -> None:
    def chunks() -> httpx.SyncByteStream:
        class Stream(httpx.SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                for _ in range(100):
                    yield b"x" * 1000

        return Stream()

    transport = httpx.MockTransport(lambda request: httpx.Response(200, stream=chunks()))
    with pytest.raises(PackError, match="larger than 5000 bytes"):
        fetch("https://packs.example/a", transport=transport, max_bytes=5000)
