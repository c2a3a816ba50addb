"""A small `kustomize build` for what deploy/ uses, and helpers to read what it renders.

`build` models: resources (files and directories), configMapGenerator (kustomize v5's name hash,
and an overlay's `behavior: replace` / `merge`), patches (strategic merge on a Deployment, and
`$patch: delete` on any object, matched by kind, name and namespace), namespace, labels and
images. Anything else in a kustomization.yaml fails the test rather than being silently ignored;
tests/test_deploy.py checks that kubectl's built-in kustomize renders exactly the same objects.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml

from bot.config import parse_config_text

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
              "volumeMounts": "mountPath", "ports": "containerPort"}  # fmt: skip
SUPPORTED = {
    "apiVersion",
    "kind",
    "namespace",
    "labels",
    "resources",
    "configMapGenerator",
    "patches",
    "images",
}
Obj = dict[str, Any]


# -- the renderer ----------------------------------------------------------------------------------


def load_all(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def object_key(obj: Obj) -> tuple[str, str, str, str]:
    meta = obj["metadata"]
    return obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"]


def _config_map_hash(data: dict[str, str]) -> str:
    # kustomize v5 (api/hasher) hashes {"data", "kind", "name"} as Go's json.Marshal writes it;
    # its kyaml lookup of "metadata/name" finds nothing, so the name it hashes is "".
    text = json.dumps({"data": data, "kind": "ConfigMap", "name": ""}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False)  # fmt: skip
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return hashlib.sha256(text.encode()).hexdigest()[:10].translate(str.maketrans("013ae", "ghkmt"))


def _merge(base: Any, patch: Any) -> Any:
    """Strategic merge patch for the fields a Deployment patch touches."""
    if not (isinstance(base, dict) and isinstance(patch, dict)):
        return copy.deepcopy(patch)
    out = copy.deepcopy(base)
    for field, value in patch.items():
        if value is None:
            out.pop(field, None)
        elif isinstance(value, list) and field in MERGE_KEYS and isinstance(out.get(field), list):
            key = MERGE_KEYS[field]
            old = {item.get(key): item for item in out[field]}
            patched = [_merge(old[i.get(key)], i) if i.get(key) in old else copy.deepcopy(i) for i in value]
            named = {item.get(key) for item in value}
            # kustomize's kyaml puts the patch's items first, in the patch's order, then the rest.
            out[field] = patched + [copy.deepcopy(o) for o in out[field] if o.get(key) not in named]
        elif field in out:
            out[field] = _merge(out[field], value)
        else:
            out[field] = copy.deepcopy(value)
    return out


def _pod_templates(obj: Obj) -> list[Obj]:
    return [obj["spec"]["template"]] if obj["kind"] == "Deployment" else []


def _accumulate(directory: Path) -> tuple[list[Obj], set[str]]:
    """The objects of a kustomization, and the names of the ConfigMaps generated on the way."""
    kust = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert set(kust) <= SUPPORTED, f"{directory}: not modelled by this test: {set(kust) - SUPPORTED}"
    objects: list[Obj] = []
    generated: set[str] = set()
    for entry in kust.get("resources", []):
        path = directory / entry
        if path.is_dir():
            found, names = _accumulate(path)
            objects, generated = objects + found, generated | names
        else:
            objects += load_all(path)
    for gen in kust.get("configMapGenerator", []):
        assert set(gen) <= {"name", "files", "behavior"}, gen
        data = {Path(f).name: (directory / f).read_text() for f in gen["files"]}
        behavior = gen.get("behavior", "create")
        if behavior == "create":
            generated.add(gen["name"])
            objects.append(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": gen["name"]}, "data": data}
            )
            continue
        # An overlay's replace / merge keeps the base's object (its namespace and labels).
        assert behavior in ("replace", "merge"), gen
        assert gen["name"] in generated, f"{gen['name']}: only a generated ConfigMap is modelled"
        [old] = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == gen["name"]]
        old["data"] = data if behavior == "replace" else {**old["data"], **data}
    # Transformer order as in kustomize: patches, namespace, labels, images.
    for entry in kust.get("patches", []):
        assert set(entry) == {"path"}, f"only strategic merge patches from a file: {entry}"
        [patch] = load_all(directory / entry["path"])
        targets = [i for i, o in enumerate(objects) if object_key(o) == object_key(patch)]
        assert len(targets) == 1, f"no unique target for {object_key(patch)}"
        if patch.get("$patch") == "delete":
            del objects[targets[0]]
            continue
        assert patch["kind"] == "Deployment"
        objects[targets[0]] = _merge(objects[targets[0]], patch)
    namespace = kust.get("namespace")
    for obj in objects:
        if namespace and obj["kind"] not in CLUSTER_SCOPED:
            obj["metadata"]["namespace"] = namespace
        if namespace and obj["kind"] == "Namespace":
            assert obj["metadata"]["name"] == namespace, "renaming a Namespace is not modelled"
        for subject in obj.get("subjects", []) if namespace else ():
            assert subject.get("namespace") == namespace, "write binding subjects' namespace out"
    for entry in kust.get("labels", []):
        assert entry.get("includeSelectors") is False, "selector labels are not modelled"
        for obj in objects:
            obj["metadata"].setdefault("labels", {}).update(entry["pairs"])
            if entry.get("includeTemplates"):
                for template in _pod_templates(obj):
                    template.setdefault("metadata", {}).setdefault("labels", {}).update(entry["pairs"])
    for image in kust.get("images", []):
        for obj in objects:
            for template in _pod_templates(obj):
                for container in template["spec"]["containers"]:
                    if re.split(r"[:@]", container["image"])[0] == image["name"]:
                        container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    return objects, generated


def build(directory: Path) -> list[Obj]:
    objects, generated = _accumulate(directory)
    # As kustomize does, last and once: hash the final data into the names, then fix references.
    renamed: dict[str, str] = {}
    for obj in objects:
        name = obj["metadata"]["name"]
        if obj["kind"] == "ConfigMap" and name in generated:
            renamed[name] = obj["metadata"]["name"] = f"{name}-{_config_map_hash(obj['data'])}"
    for obj in objects:
        for template in _pod_templates(obj):
            for volume in template["spec"].get("volumes", []):
                if "configMap" in volume:
                    volume["configMap"]["name"] = renamed.get(
                        volume["configMap"]["name"], volume["configMap"]["name"]
                    )
    return objects


# -- reading what it renders ----------------------------------------------------------------------


def find_one(objects: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"{kind} {name or ''}: {len(found)} found"
    return found[0]


def pod_container(objects: list[Obj]) -> Obj:
    containers: list[Obj] = find_one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    [container] = containers
    return container


def pod_env(objects: list[Obj]) -> dict[str, Obj]:
    return {e["name"]: e for e in pod_container(objects)["env"]}


# The variables the shipped configurations name (token_env, credentials_env, password_env).
ENVIRON = {"ARGOCD_TOKEN": "t", "GIT_TOKEN": "t", "GITOPS_BOT_DATABASE_PASSWORD": "t"}


def config_text(objects: list[Obj]) -> str:
    text: str = find_one(objects, "ConfigMap")["data"]["gitops-bot.yaml"]
    return text


def bot_config(objects: list[Obj]) -> Any:
    return parse_config_text(config_text(objects), environ=ENVIRON).settings
