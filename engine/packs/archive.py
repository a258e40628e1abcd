"""Pack files: read from a folder, a ``.tar.gz`` or ``.zip`` archive, or an https URL; written
as a reproducible ``.tar.gz``.

Packs come from strangers, so reading one is strict. Nothing is ever extracted to disk: files
are read into memory, and refused are archive entries that would leave the pack folder (``..``,
absolute paths, drive letters), links, devices and anything else that is not a plain file or
folder, files that are not ``.yaml``, ``.yml``, ``.json`` or ``.md``, and packs over the size
and file-count limits. Downloads are https only (redirects included), capped in size, and may be
pinned to a SHA-256.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urljoin, urlsplit

import httpx
import yaml

from engine.errors import ErrorDetail, SousError

ALLOWED_SUFFIXES = (".yaml", ".yml", ".json", ".md")
MAX_ARCHIVE_BYTES = 5_000_000
MAX_FILE_BYTES = 1_000_000
MAX_TOTAL_BYTES = 10_000_000
MAX_FILES = 500
MAX_REDIRECTS = 5


class PackError(SousError):
    """A pack cannot be read, built or installed; ``details`` lists every problem found."""

    def __init__(self, message: str, details: list[ErrorDetail] | None = None) -> None:
        self.message = message
        self.details = details or []
        lines = [message, *(f"  {d}" for d in self.details)]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class PackFiles:
    """A pack's files by their path inside the pack folder (``templates/low-stock.yaml``)."""

    files: dict[str, bytes] = field(default_factory=dict)

    def text(self, path: str) -> str:
        try:
            return self.files[path].decode("utf-8")
        except UnicodeDecodeError:
            raise PackError(f"{path} is not UTF-8 text") from None

    def under(self, folder: str) -> list[str]:
        return sorted(p for p in self.files if p.startswith(folder.rstrip("/") + "/"))

    def texts(self) -> dict[str, str]:
        return {path: self.text(path) for path in sorted(self.files)}

    @classmethod
    def from_texts(cls, texts: dict[str, str]) -> PackFiles:
        return cls({path: text.encode("utf-8") for path, text in texts.items()})


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _clean_name(name: str) -> str:
    """The entry's path inside the archive, or a :class:`PackError` if it could escape."""
    if "\\" in name or "\x00" in name:
        raise PackError(
            f"refused archive entry {name!r}: backslashes and NUL are not allowed in names"
        )
    path = PurePosixPath(name)
    if path.is_absolute() or (path.parts and path.parts[0].endswith(":")):
        raise PackError(f"refused archive entry {name!r}: absolute paths leave the pack folder")
    if ".." in path.parts:
        raise PackError(f"refused archive entry {name!r}: '..' leaves the pack folder")
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts:
        raise PackError(f"refused archive entry {name!r}: empty name")
    return "/".join(parts)


def _check_file(path: str, size: int) -> None:
    if not path.lower().endswith(ALLOWED_SUFFIXES):
        raise PackError(
            f"refused {path}: a pack holds only .yaml, .yml, .json and .md files (data, never code)"
        )
    if size > MAX_FILE_BYTES:
        raise PackError(f"refused {path}: larger than {MAX_FILE_BYTES // 1_000_000} MB")


class _Collector:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.total = 0

    def add(self, name: str, data: bytes) -> None:
        if name in self.files:
            raise PackError(f"refused archive: {name} appears twice")
        if len(self.files) >= MAX_FILES:
            raise PackError(f"refused: a pack holds at most {MAX_FILES} files")
        self.total += len(data)
        if self.total > MAX_TOTAL_BYTES:
            raise PackError(
                f"refused: a pack holds at most {MAX_TOTAL_BYTES // 1_000_000} MB of files"
            )
        self.files[name] = data

    def result(self) -> PackFiles:
        names = list(self.files)
        if "pack.yaml" not in self.files:
            tops = {n.split("/", 1)[0] for n in names}
            if len(tops) == 1 and all("/" in n for n in names):
                top = tops.pop()
                if f"{top}/pack.yaml" in self.files:
                    names_stripped = {n.split("/", 1)[1]: d for n, d in self.files.items()}
                    return _checked(names_stripped)
            raise PackError("not a pack: no pack.yaml at its top (or in its one top folder)")
        return _checked(self.files)


def _checked(files: dict[str, bytes]) -> PackFiles:
    for path, data in files.items():
        _check_file(path, len(data))
    return PackFiles(dict(sorted(files.items())))


def read_folder(folder: Path) -> PackFiles:
    """A pack folder's files; links and non-regular files are refused, never followed."""
    if not (folder / "pack.yaml").is_file():
        raise PackError(f"not a pack: {folder} has no pack.yaml")
    collector = _Collector()
    for root, dirs, names in os.walk(folder, followlinks=False):
        for name in [*dirs, *names]:
            path = Path(root) / name
            rel = path.relative_to(folder).as_posix()
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                raise PackError(f"refused {rel}: links are not allowed in a pack")
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                raise PackError(f"refused {rel}: not a plain file")
            _check_file(rel, path.stat().st_size)
            collector.add(rel, path.read_bytes())
    return collector.result()


def _tar_members(data: bytes) -> Iterator[tuple[str, bytes]]:
    try:
        archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")  # noqa: SIM115 - closed below
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise PackError(f"not a readable .tar.gz archive: {exc}") from None
    with archive:
        while True:
            try:
                member = archive.next()
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise PackError(f"damaged .tar.gz archive: {exc}") from None
            if member is None:
                return
            name = _clean_name(member.name)
            if member.isdir():
                continue
            if member.issym() or member.islnk():
                raise PackError(f"refused archive entry {name}: links are not allowed in a pack")
            if not member.isreg():
                raise PackError(
                    f"refused archive entry {name}: not a plain file (devices, FIFOs and the like)"
                )
            _check_file(name, member.size)
            handle = archive.extractfile(member)
            assert handle is not None
            yield name, handle.read(MAX_FILE_BYTES + 1)


def _zip_members(data: bytes) -> Iterator[tuple[str, bytes]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError) as exc:
        raise PackError(f"not a readable .zip archive: {exc}") from None
    with archive:
        for info in archive.infolist():
            name = _clean_name(info.filename)
            kind = stat.S_IFMT(info.external_attr >> 16)
            if kind == stat.S_IFLNK:
                raise PackError(f"refused archive entry {name}: links are not allowed in a pack")
            if info.is_dir():
                continue
            if kind not in (0, stat.S_IFREG):
                raise PackError(
                    f"refused archive entry {name}: not a plain file (devices, FIFOs and the like)"
                )
            if info.flag_bits & 0x1:
                raise PackError(f"refused archive entry {name}: encrypted")
            _check_file(name, info.file_size)
            try:
                with archive.open(info) as handle:
                    content = handle.read(MAX_FILE_BYTES + 1)
            except (zipfile.BadZipFile, OSError, NotImplementedError) as exc:
                raise PackError(f"damaged .zip archive at {name}: {exc}") from None
            yield name, content


def read_archive(data: bytes) -> PackFiles:
    """The files of a ``.tar.gz`` or ``.zip`` pack (told apart by their first bytes)."""
    if len(data) > MAX_ARCHIVE_BYTES:
        raise PackError(f"refused: the archive is larger than {MAX_ARCHIVE_BYTES // 1_000_000} MB")
    if data[:2] == b"\x1f\x8b":
        members = _tar_members(data)
    elif data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        members = _zip_members(data)
    else:
        raise PackError("not a pack archive: expected a .tar.gz or a .zip")
    collector = _Collector()
    for name, content in members:
        if len(content) > MAX_FILE_BYTES:
            raise PackError(f"refused {name}: larger than {MAX_FILE_BYTES // 1_000_000} MB")
        collector.add(name, content)
    return collector.result()


def build_archive(files: PackFiles, folder_name: str) -> bytes:
    """A reproducible ``.tar.gz``: sorted entries under ``folder_name/``, fixed times and owners,
    so the same files always give the same bytes and the same SHA-256."""
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped:  # noqa: SIM117
        with tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for path in sorted(files.files):
                data = files.files[path]
                info = tarfile.TarInfo(f"{folder_name}/{path}")
                info.size = len(data)
                info.mode = 0o644
                info.mtime = 0
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                archive.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def archive_folder(files: PackFiles) -> str:
    """The folder a built archive puts the files in: ``name-version`` from ``pack.yaml``."""
    try:
        data = yaml.safe_load(files.files.get("pack.yaml", b""))
    except yaml.YAMLError:
        data = None
    if isinstance(data, dict) and data.get("name") and data.get("version"):
        return _clean_name(f"{data['name']}-{data['version']}").replace("/", "-")
    return "pack"


def check_sha256(data: bytes, expected: str) -> str:
    """The archive's SHA-256, or a :class:`PackError` if it is not the one pinned."""
    actual = sha256(data)
    wanted = expected.strip().lower().removeprefix("sha256:")
    if len(wanted) != 64 or any(c not in "0123456789abcdef" for c in wanted):
        raise PackError(f"{expected!r} is not a SHA-256 (64 hexadecimal digits)")
    if actual != wanted:
        raise PackError(
            f"SHA-256 mismatch: expected {wanted}, got {actual}; the pack was not installed"
        )
    return actual


def fetch(
    url: str,
    *,
    transport: httpx.BaseTransport | None = None,
    max_bytes: int = MAX_ARCHIVE_BYTES,
    timeout: float = 30.0,
) -> bytes:
    """Download a pack archive over https (redirects too), at most ``max_bytes``."""
    with httpx.Client(transport=transport, timeout=timeout, follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                scheme = urlsplit(url).scheme
            except ValueError as exc:  # a redirect to something that is not a URL
                raise PackError(f"refused {url}: not a URL ({exc})") from None
            if scheme != "https":
                raise PackError(f"refused {url}: packs are downloaded over https only")
            try:
                with client.stream(
                    "GET", url, headers={"Accept": "application/gzip, application/zip"}
                ) as response:
                    if response.is_redirect:
                        url = urljoin(url, response.headers.get("location", ""))
                        continue
                    if response.status_code != 200:
                        raise PackError(f"download failed: {url} answered {response.status_code}")
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > max_bytes:
                        raise PackError(f"refused {url}: larger than {max_bytes} bytes")
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > max_bytes:
                            raise PackError(f"refused {url}: larger than {max_bytes} bytes")
                    return bytes(body)
            except httpx.HTTPError as exc:
                raise PackError(f"download failed: {url}: {exc}") from None
    raise PackError(f"download failed: more than {MAX_REDIRECTS} redirects")


@dataclass(frozen=True)
class Source:
    """Where a pack came from, and the SHA-256 of the archive it was read from."""

    files: PackFiles
    sha256: str
    origin: str


def read_source(
    source: str | Path,
    *,
    pin: str | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Source:
    """A pack from a folder, an archive file or an https URL. A folder's SHA-256 is that of its
    reproducible archive (what ``sous packs build`` writes), so a pin works for both."""
    text = str(source)
    try:
        scheme = urlsplit(text).scheme.lower()
    except ValueError as exc:  # an unbalanced [ in the host, ...
        raise PackError(f"refused {text}: not a URL ({exc})") from None
    if scheme in ("http", "https", "ftp", "file") or "://" in text:
        if scheme != "https":
            raise PackError(f"refused {text}: packs are downloaded over https only")
        data = fetch(text, transport=transport)
        digest = check_sha256(data, pin) if pin else sha256(data)
        return Source(read_archive(data), digest, text)
    path = Path(source)
    if path.is_dir():
        files = read_folder(path)
        archive = build_archive(files, archive_folder(files))
        digest = check_sha256(archive, pin) if pin else sha256(archive)
        return Source(files, digest, str(path))
    try:
        data = path.read_bytes() if path.stat().st_size <= MAX_ARCHIVE_BYTES else b""
    except OSError as exc:
        raise PackError(f"cannot read {path}: {exc}") from None
    if not data:
        raise PackError(
            f"refused {path}: empty, or larger than {MAX_ARCHIVE_BYTES // 1_000_000} MB"
        )
    digest = check_sha256(data, pin) if pin else sha256(data)
    return Source(read_archive(data), digest, str(path))
