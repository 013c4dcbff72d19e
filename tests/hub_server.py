"""A loopback Hub-API server, so tests can drive the real ``huggingface_hub`` client with no Hub.

Test code only: nothing in ``clinx_hub/`` may import this module.

The server speaks the dozen or so routes that ``create_repo``, ``upload_folder``/``push_to_hub``
(preupload + NDJSON commit), ``hf_hub_download``, ``snapshot_download``, ``list_repo_files``,
``from_pretrained``, ``Dataset.push_to_hub`` and ``load_dataset`` call (see ``ROUTES``). Repos live
in memory as a chain of commits, each a full ``{path: bytes}`` snapshot. Small text files arrive
base64-encoded inside the commit ("regular"); weights and parquet files go through the git-lfs
batch API with a basic PUT to this server, because ``Dataset.push_to_hub`` deletes each parquet
shard right after its LFS pre-upload and so cannot send it inline. Xet is never offered
(``HF_HUB_DISABLE_XET=1``). A request to any other route gets a 404 whose message names the method
and path and says that this server does not implement it, and is recorded in
``LocalHub.unknown_requests``.

Use it from any test module through the ``local_hub`` fixture (``conftest.py`` imports it)::

    def test_push(local_hub):
        HfApi().create_repo("clinx/demo")             # in-process client: already redirected
        subprocess.run([...], env=local_hub.env())    # a fresh process: pass the environment

Why both an environment and attribute patches: ``huggingface_hub.constants`` and
``datasets.config`` read ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_HOME`` and friends once, at import
time, and the test session has imported them long before the fixture runs. The fixture therefore
sets the environment variables (for subprocesses and for code that reads them late) *and*
monkeypatches the already-computed module constants (``redirect_clients``); both are undone at
teardown. A subprocess started with ``local_hub.env()`` reads everything afresh at import, so
prefer a subprocess where a test must not depend on this process's import-time state (for
example transformers' ``HF_MODULES_CACHE`` for ``trust_remote_code``, which is not patched here).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

HOST = "127.0.0.1"
DUMMY_TOKEN = "hf_loopbackDummyTokenForClinxHubTests"
DEFAULT_USER = "clinx-tester"
REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
# Words that follow a repo id in API paths; they tell a one-segment repo id ("gpt2") from "ns/name".
_ACTIONS = {"tree", "paths-info", "preupload", "commit", "revision", "refs", "commits", "branch", "tag", "settings"}
_SHA = re.compile(r"[0-9a-f]{40}")
IDLE_CONNECTION_TIMEOUT_S = 10


def git_blob_sha(content: bytes) -> str:
    """The git object id of a file, which the Hub uses as the ETag of a regular (non-LFS) file."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


# The patterns of the Hub's default .gitattributes that matter here, and its size threshold: such files
# go through the LFS batch API (datasets deletes a parquet shard once its LFS upload is done, so
# answering "regular" for everything would break Dataset.push_to_hub).
LFS_SUFFIXES = (
    *(".bin", ".safetensors", ".parquet", ".arrow", ".pt", ".pth", ".ckpt", ".h5", ".onnx", ".npy", ".npz"),
    *(".pkl", ".pickle", ".msgpack", ".model", ".zip", ".gz", ".tar", ".zst"),
)
LFS_MIN_SIZE = 10 * 1024 * 1024


def is_lfs(path: str, size: int) -> bool:
    """Whether the Hub would store this file in LFS (empty files never are; the client forces them regular)."""
    return size > 0 and (path.endswith(LFS_SUFFIXES) or size >= LFS_MIN_SIZE)


def lfs_pointer(content: bytes) -> bytes:
    """The git-lfs pointer file git stores in place of an LFS file."""
    oid = hashlib.sha256(content).hexdigest()
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(content)}\n".encode()


class HubError(Exception):
    """An HTTP error answer; ``code`` becomes ``X-Error-Code``, which the client maps to its exceptions."""

    def __init__(self, status: int, message: str, code: str | None = None, **extra: object) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.extra = extra


@dataclass
class Commit:
    sha: str
    files: dict[str, bytes]
    title: str
    message: str
    parent: str | None
    date: str


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    created: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit:
        sha = self.branches.get(revision) or self.tags.get(revision)
        if sha is None and _SHA.fullmatch(revision) and revision in self.commits:
            sha = revision
        if sha is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return self.commits[sha]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


class HubStore:
    """The repos of one server, behind one lock (the handler runs one thread per connection)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}  # sha256 -> content, uploaded before the commit names them
        self._counter = 0

    def get(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, f"Repository not found: {repo_type} {repo_id}", "RepoNotFound")
        return repo

    def new_commit(self, repo: Repo, branch: str, files: dict[str, bytes], title: str, message: str) -> Commit:
        parent = repo.branches.get(branch)
        self._counter += 1
        digest = hashlib.sha1()
        for part in (repo.repo_type, repo.repo_id, parent or "", title, str(self._counter)):
            digest.update(part.encode() + b"\0")
        for path in sorted(files):
            digest.update(path.encode() + b"\0" + git_blob_sha(files[path]).encode())
        commit = Commit(digest.hexdigest(), dict(files), title, message, parent, _now())
        repo.commits[commit.sha] = commit
        repo.branches[branch] = commit.sha
        return commit


# ---------------------------------------------------------------------------------------------
# Route handlers: (method, compiled pattern over the raw path, function(server, request, match)).


@dataclass
class Request:
    method: str
    segments: list[str]  # raw path split on "/", each piece still percent-encoded
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    endpoint: str

    def json(self) -> dict:
        return json.loads(self.body or b"{}")


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # HEAD answers carry the Content-Length of the GET body without the body itself.
    content_length: int | None = None

    @classmethod
    def of_json(cls, value: object, status: int = 200) -> Response:
        return cls(status, json.dumps(value).encode(), {"Content-Type": "application/json"})


def _split_repo(segments: list[str], store: HubStore, repo_type: str) -> tuple[str, list[str]]:
    """``(repo_id, rest)`` from the segments after ``/api/{type}s/``: "ns/name" unless only "name" fits."""
    names = [unquote(s) for s in segments]
    if len(names) >= 2 and (
        (repo_type, f"{names[0]}/{names[1]}") in store.repos or names[1] not in _ACTIONS
    ):
        return f"{names[0]}/{names[1]}", segments[2:]
    if not names:
        raise HubError(404, "no repo id in path", "RepoNotFound")
    return names[0], segments[1:]


def _tree_entries(files: dict[str, bytes], prefix: str, recursive: bool) -> list[dict]:
    """The ``/tree`` answer: files and folders under ``prefix``, one level or all levels."""
    prefix = prefix.strip("/")
    base = f"{prefix}/" if prefix else ""
    if prefix and prefix not in {p for path in files for p in _parents(path)}:
        if prefix in files:
            return [_file_entry(prefix, files[prefix])]
        raise HubError(404, f"path {prefix} not found", "EntryNotFound")
    entries: dict[str, dict] = {}
    for path in sorted(files):
        if not path.startswith(base):
            continue
        rest = path[len(base) :].split("/")
        for depth in range(1, len(rest)):
            folder = base + "/".join(rest[:depth])
            if recursive or depth == 1:
                entries.setdefault(folder, _folder_entry(folder, files))
            if not recursive:
                break
        if recursive or len(rest) == 1:
            entries[path] = _file_entry(path, files[path])
    return list(entries.values())


def _parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _file_entry(path: str, content: bytes) -> dict:
    if not is_lfs(path, len(content)):
        return {"type": "file", "oid": git_blob_sha(content), "size": len(content), "path": path}
    pointer = lfs_pointer(content)
    lfs = {"oid": hashlib.sha256(content).hexdigest(), "size": len(content), "pointerSize": len(pointer)}
    return {"type": "file", "oid": git_blob_sha(pointer), "size": len(content), "path": path, "lfs": lfs}


def _folder_entry(folder: str, files: dict[str, bytes]) -> dict:
    inside = sorted(p for p in files if p.startswith(folder + "/"))
    oid = hashlib.sha1("\0".join(inside).encode()).hexdigest()
    return {"type": "directory", "oid": oid, "size": 0, "path": folder}


def _card_data(files: dict[str, bytes]) -> dict | None:
    """The YAML header of README.md, as the Hub reports it in ``cardData``."""
    readme = files.get("README.md", b"").decode("utf-8", errors="replace")
    match = re.match(r"---\n(.*?)\n---", readme, re.DOTALL)
    if not match:
        return None
    import yaml  # a dependency of datasets and transformers

    data = yaml.safe_load(match.group(1))
    return data if isinstance(data, dict) else None


def repo_info(store: HubStore, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
    repo = store.get(repo_type, repo_id)
    revision = "main"
    if rest:
        if rest[0] != "revision" or len(rest) < 2:
            raise HubError(404, f"unknown repo info route {'/'.join(rest)}")
        revision = unquote("/".join(rest[1:]))
    commit = repo.resolve(revision)
    siblings = []
    for path, content in sorted(commit.files.items()):
        entry = _file_entry(path, content)
        sibling = {"rfilename": path, "size": entry["size"], "blobId": entry["oid"]}
        if "lfs" in entry:
            lfs = entry["lfs"]
            sibling["lfs"] = {"size": lfs["size"], "sha256": lfs["oid"], "pointerSize": lfs["pointerSize"]}
        siblings.append(sibling)
    info = {
        "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
        "id": repo_id,
        "author": repo_id.split("/")[0] if "/" in repo_id else DEFAULT_USER,
        "sha": commit.sha,
        "lastModified": commit.date,
        "createdAt": repo.created,
        "private": False,
        "gated": False,
        "disabled": False,
        "downloads": 0,
        "likes": 0,
        "tags": [],
        "siblings": siblings,
    }
    card = _card_data(commit.files)
    if card is not None:
        info["cardData"] = card
    if repo_type == "model":
        info["modelId"] = repo_id
    if repo_type == "space":
        info["sdk"] = "static"
    return Response.of_json(info)


def create_repo(store: HubStore, request: Request) -> Response:
    payload = request.json()
    repo_type = payload.get("type") or "model"
    namespace = payload.get("organization") or DEFAULT_USER
    repo_id = f"{namespace}/{payload['name']}"
    url = f"{request.endpoint}/{URL_PREFIX[repo_type]}{repo_id}"
    with store.lock:
        if (repo_type, repo_id) in store.repos:
            # The Hub names the existing repo's url, which create_repo(exist_ok=True) returns.
            raise HubError(409, "You already created this repo", None, url=url)
        repo = Repo(repo_type, repo_id, _now())
        store.repos[(repo_type, repo_id)] = repo
        # The Hub's first commit holds a .gitattributes; an empty tree keeps listings exact for tests.
        store.new_commit(repo, "main", {}, "initial commit", "")
    return Response.of_json({"url": url, "name": repo_id, "id": repo_id})


def delete_repo(store: HubStore, request: Request) -> Response:
    payload = request.json()
    repo_type = payload.get("type") or "model"
    repo_id = f"{payload.get('organization') or DEFAULT_USER}/{payload['name']}"
    with store.lock:
        store.get(repo_type, repo_id)
        del store.repos[(repo_type, repo_id)]
    return Response.of_json({})


def repo_action(store: HubStore, request: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
    """``/api/{type}s/{repo}/{action}/...``: tree, paths-info, preupload, commit, refs, commits, branch."""
    repo = store.get(repo_type, repo_id)
    if not rest:
        raise HubError(404, "missing action")
    action, args = rest[0], [unquote(s) for s in rest[1:]]
    revision = args[0] if args else "main"
    key = (request.method, action)
    if key == ("GET", "tree"):
        commit = repo.resolve(revision)
        recursive = request.query.get("recursive", ["false"])[0].lower() in {"1", "true"}
        return Response.of_json(_tree_entries(commit.files, "/".join(args[1:]), recursive))
    if key == ("POST", "paths-info"):
        commit = repo.resolve(revision)
        form = parse_qs(request.body.decode())
        found = []
        for path in form.get("paths", []):
            path = path.strip("/")
            if path in commit.files:
                found.append(_file_entry(path, commit.files[path]))
            elif any(p.startswith(path + "/") for p in commit.files):
                found.append(_folder_entry(path, commit.files))
        return Response.of_json(found)
    if key == ("POST", "preupload"):
        commit = repo.resolve(revision)
        files = []
        for item in request.json().get("files", []):
            lfs = is_lfs(item["path"], int(item.get("size") or 0))
            existing = commit.files.get(item["path"])
            # The client compares this oid with its own: sha256 for LFS files, the git blob sha otherwise.
            oid = None
            if existing is not None:
                oid = hashlib.sha256(existing).hexdigest() if lfs else git_blob_sha(existing)
            mode = "lfs" if lfs else "regular"
            files.append({"path": item["path"], "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        return Response.of_json({"files": files, "commitOid": commit.sha})
    if key == ("POST", "commit"):
        return _commit(store, request, repo, revision)
    if key == ("GET", "refs"):
        refs = {
            "branches": [
                {"name": n, "ref": f"refs/heads/{n}", "targetCommit": s} for n, s in sorted(repo.branches.items())
            ],
            "tags": [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": s} for n, s in sorted(repo.tags.items())],
            "converts": [],
            "pullRequests": [],
        }
        return Response.of_json(refs)
    if key == ("GET", "commits"):
        history, commit = [], repo.resolve(revision)
        while commit is not None:
            history.append(
                {
                    "id": commit.sha,
                    "title": commit.title,
                    "message": commit.message,
                    "authors": [{"user": DEFAULT_USER}],
                    "date": commit.date,
                }
            )
            commit = repo.commits.get(commit.parent) if commit.parent else None
        return Response.of_json(history)
    if key == ("POST", "branch"):
        branch = "/".join(args)
        if branch in repo.branches:
            raise HubError(409, f"Reference already exists: refs/heads/{branch}")
        start = repo.resolve(request.json().get("startingPoint") or "main")
        repo.branches[branch] = start.sha
        return Response.of_json({})
    if key == ("DELETE", "branch"):
        branch = "/".join(args)
        if branch not in repo.branches:
            raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
        del repo.branches[branch]
        return Response.of_json({})
    if key == ("POST", "tag"):
        tag = request.json()["tag"]
        if tag in repo.tags:
            raise HubError(409, f"Tag {tag} already exists")
        repo.tags[tag] = repo.resolve(revision).sha
        return Response.of_json({})
    raise HubError(404, f"{request.method} {action} is not implemented by tests/hub_server.py")


def _commit(store: HubStore, request: Request, repo: Repo, revision: str) -> Response:
    """Apply an NDJSON commit (header, file, deletedFile, deletedFolder lines) to a branch."""
    if request.query.get("create_pr"):
        raise HubError(400, "create_pr is not supported by tests/hub_server.py")
    if revision not in repo.branches:
        raise HubError(404, f"Invalid rev id: {revision} (commits go to an existing branch)", "RevisionNotFound")
    head = repo.commits[repo.branches[revision]]
    files = dict(head.files)
    header: dict = {}
    for line in request.body.splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        key, value = item["key"], item["value"]
        if key == "header":
            header = value
        elif key == "file":
            if value.get("encoding") != "base64":
                raise HubError(400, f"file {value.get('path')}: only base64 content is supported")
            files[value["path"]] = base64.b64decode(value["content"])
        elif key == "deletedFile":
            if value["path"] not in files:
                raise HubError(404, f"A file with this name doesn't exist: {value['path']}", "EntryNotFound")
            del files[value["path"]]
        elif key == "deletedFolder":
            folder = value["path"].rstrip("/") + "/"
            for path in [p for p in files if p.startswith(folder)]:
                del files[path]
        elif key == "lfsFile":
            content = store.lfs_objects.get(value["oid"])
            if content is None:
                raise HubError(400, f"LFS object {value['oid']} of {value['path']} was never uploaded")
            files[value["path"]] = content
        else:
            raise HubError(400, f"unknown commit line key {key!r}")
    parent = header.get("parentCommit")
    if parent and parent != head.sha:
        raise HubError(412, f"A commit has happened since {parent}; head is {head.sha}")
    commit = store.new_commit(repo, revision, files, header.get("summary", ""), header.get("description", ""))
    url = f"{request.endpoint}/{URL_PREFIX[repo.repo_type]}{repo.repo_id}/commit/{commit.sha}"
    return Response.of_json({"success": True, "commitOid": commit.sha, "commitUrl": url, "hookOutput": ""})


def resolve_file(store: HubStore, request: Request, repo_type: str, segments: list[str]) -> Response:
    """``/{prefix}{repo}/resolve/{rev}/{path}``: the file, with the headers ``hf_hub_download`` reads."""
    where = segments.index("resolve")
    repo_id = "/".join(unquote(s) for s in segments[:where])
    revision = unquote(segments[where + 1]) if len(segments) > where + 1 else "main"
    path = "/".join(unquote(s) for s in segments[where + 2 :])
    with store.lock:
        repo = store.get(repo_type, repo_id)
        commit = repo.resolve(revision)
        if path not in commit.files:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        content = commit.files[path]
    # The Hub's ETag is the git blob sha of a regular file and the sha256 of an LFS file; for LFS files
    # it answers with a redirect carrying X-Linked-Etag/X-Linked-Size, here the content comes at once.
    lfs = is_lfs(path, len(content))
    etag = f'"{hashlib.sha256(content).hexdigest() if lfs else git_blob_sha(content)}"'
    headers = {
        "Content-Type": "application/octet-stream",
        "ETag": etag,
        "X-Repo-Commit": commit.sha,
        "Accept-Ranges": "bytes",
        "Last-Modified": formatdate(usegmt=True),
    }
    if lfs:
        headers |= {"X-Linked-Etag": etag, "X-Linked-Size": str(len(content))}
    status, body = 200, content
    if (wanted := request.headers.get("range")) and (m := re.fullmatch(r"bytes=(\d*)-(\d*)", wanted.strip())):
        first, last = m.groups()
        if first:
            start, stop = int(first), min(int(last) + 1 if last else len(content), len(content))
        else:
            start, stop = max(len(content) - int(last or 0), 0), len(content)
        if start >= len(content) and len(content) > 0:
            raise HubError(416, f"range {wanted} outside a file of {len(content)} bytes")
        status, body = 206, content[start:stop]
        headers["Content-Range"] = f"bytes {start}-{max(stop - 1, start)}/{len(content)}"
    return Response(status, body, headers)


def lfs_batch(store: HubStore, request: Request, repo_type: str, repo_id: str) -> Response:
    """The git-lfs batch API, basic transfer: each object not yet stored gets an upload href here."""
    payload = request.json()
    if payload.get("operation") != "upload":
        raise HubError(400, "only LFS uploads are supported (downloads go through /resolve)")
    with store.lock:
        store.get(repo_type, repo_id)
        objects = []
        for item in payload.get("objects", []):
            entry = {"oid": item["oid"], "size": item["size"], "authenticated": True}
            if item["oid"] not in store.lfs_objects:
                entry["actions"] = {"upload": {"href": f"{request.endpoint}/lfs-upload/{item['oid']}", "header": {}}}
            objects.append(entry)
    body = json.dumps({"transfer": "basic", "objects": objects}).encode()
    return Response(200, body, {"Content-Type": "application/vnd.git-lfs+json"})


def lfs_upload(store: HubStore, request: Request, oid: str) -> Response:
    if hashlib.sha256(request.body).hexdigest() != oid:
        raise HubError(400, f"LFS upload for {oid}: content has another sha256")
    with store.lock:
        store.lfs_objects[oid] = request.body
    return Response(200)


def whoami(store: HubStore, request: Request) -> Response:
    return Response.of_json(
        {
            "type": "user",
            "name": DEFAULT_USER,
            "fullname": "clinx_hub tests",
            "orgs": [],
            "auth": {"type": "access_token", "accessToken": {"displayName": "loopback", "role": "write"}},
        }
    )


def validate_yaml(store: HubStore, request: Request) -> Response:
    return Response.of_json({"errors": [], "warnings": []})


def route(store: HubStore, request: Request) -> Response:
    """Dispatch one request (the documented list of routes is ``ROUTES``)."""
    seg = request.segments
    method = request.method
    if seg[:2] == ["api", "whoami-v2"] and method == "GET":
        return whoami(store, request)
    if seg[:2] == ["api", "validate-yaml"] and method == "POST":
        return validate_yaml(store, request)
    if seg[:3] == ["api", "repos", "create"] and method == "POST":
        return create_repo(store, request)
    if seg[:3] == ["api", "repos", "delete"] and method == "DELETE":
        return delete_repo(store, request)
    if len(seg) >= 3 and seg[0] == "api" and seg[1] in REPO_TYPES:
        repo_type = REPO_TYPES[seg[1]]
        with store.lock:
            repo_id, rest = _split_repo(seg[2:], store, repo_type)
            if method == "GET" and (not rest or rest[0] == "revision"):
                return repo_info(store, request, repo_type, repo_id, rest)
            return repo_action(store, request, repo_type, repo_id, rest)
    if method == "PUT" and len(seg) == 2 and seg[0] == "lfs-upload":
        return lfs_upload(store, request, seg[1])
    is_lfs_batch = len(seg) >= 5 and seg[-4:] == ["info", "lfs", "objects", "batch"] and seg[-5].endswith(".git")
    if method == "POST" and is_lfs_batch:
        repo_type, rest = "model", seg[:-4]
        if rest[0] in {"datasets", "spaces"}:
            repo_type, rest = REPO_TYPES[rest[0]], rest[1:]
        return lfs_batch(store, request, repo_type, "/".join(unquote(s) for s in rest)[: -len(".git")])
    if method in {"GET", "HEAD"} and "resolve" in seg:
        repo_type = "model"
        rest = seg
        if seg[0] in {"datasets", "spaces"}:
            repo_type, rest = REPO_TYPES[seg[0]], seg[1:]
        if rest.index("resolve") in (1, 2):
            return resolve_file(store, request, repo_type, rest)
    raise HubError(404, f"{method} /{'/'.join(seg)} is not implemented by tests/hub_server.py")


ROUTES = """\
GET  /api/whoami-v2
POST /api/validate-yaml
POST /api/repos/create                               create_repo
DELETE /api/repos/delete                             delete_repo
GET  /api/{models,datasets,spaces}/{repo}[/revision/{rev}]   repo_info (sha, siblings, cardData)
GET  /api/{type}s/{repo}/tree/{rev}[/{path}]?recursive=      list_repo_tree, list_repo_files, snapshot_download
POST /api/{type}s/{repo}/paths-info/{rev}            get_paths_info (form field "paths")
POST /api/{type}s/{repo}/preupload/{rev}             "lfs" for LFS_SUFFIXES or >= 10 MB, else "regular"
POST /api/{type}s/{repo}/commit/{rev}                NDJSON: header, file (base64), lfsFile, deletedFile, deletedFolder
POST /[datasets/|spaces/]{repo}.git/info/lfs/objects/batch   git-lfs batch API, basic transfer
PUT  /lfs-upload/{sha256}                            the upload href the batch answer names
GET  /api/{type}s/{repo}/refs                        list_repo_refs
GET  /api/{type}s/{repo}/commits/{rev}               list_repo_commits
POST|DELETE /api/{type}s/{repo}/branch/{name}        create_branch, delete_branch
POST /api/{type}s/{repo}/tag/{rev}                   create_tag
GET|HEAD /[datasets/|spaces/]{repo}/resolve/{rev}/{path}   hf_hub_download (ETag, X-Repo-Commit, X-Linked-*, Range)
"""


# ---------------------------------------------------------------------------------------------
# The HTTP server.


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects; every answer sets Content-Length
    timeout = IDLE_CONNECTION_TIMEOUT_S
    server: _HubHTTPServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, opened=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, opened=False)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            segments=[s for s in parts.path.split("/") if s],
            query=parse_qs(parts.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self._read_body(),
            endpoint=f"http://{self.headers.get('Host') or self.server.endpoint_host}",
        )
        hub = self.server.hub
        try:
            response = route(hub.store, request)
        except HubError as error:
            if "not implemented by tests/hub_server.py" in error.message:
                hub.unknown_requests.append(f"{self.command} {self.path}")
            response = Response.of_json({"error": error.message, **error.extra}, error.status)
            response.headers["X-Error-Message"] = error.message
            if error.code:
                response.headers["X-Error-Code"] = error.code
        except Exception as error:  # a server bug must reach the test as a 500, not hang the client
            response = Response.of_json({"error": f"{type(error).__name__}: {error}"}, 500)
        hub.requests.append(f"{self.command} {self.path} -> {response.status}")
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _handle


class _HubHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    hub: LocalHub
    endpoint_host: str

    def __init__(self, hub: LocalHub) -> None:
        super().__init__((HOST, 0), _Handler)
        self.hub = hub
        self.endpoint_host = f"{HOST}:{self.server_address[1]}"
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def track(self, connection: socket.socket, *, opened: bool) -> None:
        with self._open_lock:
            (self._open.add if opened else self._open.discard)(connection)

    def close_connections(self) -> None:
        """Close keep-alive connections so no handler thread outlives the server."""
        with self._open_lock:
            for connection in list(self._open):
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class LocalHub:
    """A Hub-API server on ``127.0.0.1`` (a free port), run in a background thread.

    >>> with LocalHub() as hub:  # doctest: +SKIP
    ...     subprocess.run([...], env=hub.env())
    """

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.store = HubStore()
        self.requests: list[str] = []
        self.unknown_requests: list[str] = []
        self.cache_dir = cache_dir
        self._server: _HubHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("LocalHub is not running")
        return f"http://{self._server.endpoint_host}"

    def start(self) -> LocalHub:
        self._server = _HubHTTPServer(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="local-hub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for a subprocess that should talk to this server (``base`` defaults to ``os.environ``)."""
        env = dict(os.environ if base is None else base)
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
            env.pop(name, None)
        env.update(self.variables())
        return env

    def variables(self) -> dict[str, str]:
        """Only the variables this server needs set (what ``env`` adds to a base environment)."""
        variables = {
            "HF_ENDPOINT": self.endpoint,
            "HF_HUB_DISABLE_XET": "1",
            "HF_TOKEN": DUMMY_TOKEN,
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_UPDATE_CHECK": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "NO_PROXY": HOST,
            "no_proxy": HOST,
        }
        if self.cache_dir is not None:
            variables |= {
                "HF_HOME": str(self.cache_dir),
                "HF_HUB_CACHE": str(self.cache_dir / "hub"),
                "HF_DATASETS_CACHE": str(self.cache_dir / "datasets"),
                "HF_MODULES_CACHE": str(self.cache_dir / "modules"),
            }
        return variables

    def files(self, repo_id: str, *, repo_type: str = "model", revision: str = "main") -> dict[str, bytes]:
        """The files of a repo at a revision, read straight from the store (no HTTP)."""
        with self.store.lock:
            return dict(self.store.get(repo_type, repo_id).resolve(revision).files)


def redirect_clients(monkeypatch: pytest.MonkeyPatch, hub: LocalHub) -> None:
    """Point this process's already-imported ``huggingface_hub``/``datasets`` at ``hub`` (undone by monkeypatch)."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in hub.variables().items():
        monkeypatch.setenv(name, value)

    from huggingface_hub import constants

    endpoint = hub.endpoint
    patches: dict[str, object] = {
        "ENDPOINT": endpoint,
        "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_URL_HOSTS": frozenset(constants.HF_URL_HOSTS | {HOST}),
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HUB_DISABLE_UPDATE_CHECK": True,
    }
    if hub.cache_dir is not None:
        home = str(hub.cache_dir)
        patches |= {
            "HF_HOME": home,
            "HF_HUB_CACHE": str(hub.cache_dir / "hub"),
            "HUGGINGFACE_HUB_CACHE": str(hub.cache_dir / "hub"),
            "HF_ASSETS_CACHE": str(hub.cache_dir / "assets"),
            "HF_TOKEN_PATH": str(hub.cache_dir / "token"),
            "HF_STORED_TOKENS_PATH": str(hub.cache_dir / "stored_tokens"),
        }
    for name, value in patches.items():
        monkeypatch.setattr(constants, name, value, raising=False)

    try:
        import datasets.config as datasets_config
    except ImportError:
        return
    data_patches: dict[str, object] = {
        "HF_ENDPOINT": endpoint,
        "HUB_DATASETS_URL": endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}",
        "HF_HUB_OFFLINE": False,
        "HF_DATASETS_OFFLINE": False,
    }
    if hub.cache_dir is not None:
        data_patches |= {
            "HF_CACHE_HOME": str(hub.cache_dir),
            "HF_DATASETS_CACHE": Path(hub.cache_dir / "datasets"),
            "HF_MODULES_CACHE": Path(hub.cache_dir / "modules"),
            "DOWNLOADED_DATASETS_PATH": Path(hub.cache_dir / "datasets" / "downloads"),
            "EXTRACTED_DATASETS_PATH": Path(hub.cache_dir / "datasets" / "downloads" / "extracted"),
        }
    for name, value in data_patches.items():
        monkeypatch.setattr(datasets_config, name, value, raising=False)


@pytest.fixture
def local_hub(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalHub]:
    """A running ``LocalHub`` with this process redirected to it and a fresh temporary HF cache.

    The server, the environment and the patched constants last for one test; ``local_hub.env()``
    is the environment for a subprocess.
    """
    hub = LocalHub(cache_dir=tmp_path_factory.mktemp("hf-home"))
    with hub:
        redirect_clients(monkeypatch, hub)
        yield hub
        # Undo the patches before the server goes, so nothing reaches a closed port by mistake.
        monkeypatch.undo()
