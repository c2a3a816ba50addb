"""Reading and surgically rewriting "the version" in kustomization and HelmRelease YAML."""

from __future__ import annotations

import difflib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.errors import UserError
from services.promotion.yaml_edit import (
    VersionSet,
    VersionValue,
    apply_versions,
    changed,
    describe_changes,
    read_versions,
)
from services.settings.model import PromotionSpec

API = "registry.example.com/api"
WORKER = "registry.example.com/worker"
SIDECAR = "registry.example.com/sidecar"
DIGEST_OLD = "sha256:" + "a" * 64
DIGEST_NEW = "sha256:" + "b" * 64

# Odd on purpose: 4-space mappings, a sequence that is not indented, comments everywhere, three
# quoting styles, a digest, a flow-style entry, and a HelmRelease after a `---`.
STAGING = f"""\
# Production overlay: edited by humans and by the bot
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization

resources:
    - ../../base   # shared base

images:
# the API server
- name: {API}
  newTag: "1.4.2"   # bumped by CI
- name: {WORKER}
  newName: mirror.example.com/worker
  newTag: 2.0.1
- name: {SIDECAR}
  digest: {DIGEST_OLD}
- {{name: nginx, newTag: '1.25'}}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
    name: podinfo   # the release
spec:
    chart:
        spec:
            chart: podinfo
            version: 6.5.0  # pinned

    values:
        image:
            tag: "6.5.0"
        containers:
        -   name: app
            image: ghcr.io/acme/app:1.0
...
"""

ALL = PromotionSpec(
    images=(API, WORKER, SIDECAR, "nginx"),
    chart=True,
    yaml_paths=("spec.values.image.tag", "spec.values.containers.0.image"),
)


def diff_lines(before: str, after: str) -> list[str]:
    """The -/+ lines of a unified diff: what a reviewer sees change."""
    diff = difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True), n=0)
    return [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def with_values(versions: VersionSet, **changes: str) -> VersionSet:
    return VersionSet(
        tuple(VersionValue(v.key, changes.get(v.key, v.value), v.display) for v in versions.values)
    )


def pairs(versions: VersionSet) -> list[tuple[str, str]]:
    return [(v.key, v.value) for v in versions.values]


def one(key: str, value: str) -> VersionSet:
    return VersionSet((VersionValue(key, value, value),))


# --- reading -------------------------------------------------------------------------------------


def test_read_every_kind_of_version() -> None:
    got = read_versions(STAGING, ALL, filename="staging/kustomization.yaml")
    assert [(v.key, v.value, v.display) for v in got.values] == [
        (f"image {API}", "1.4.2", "api 1.4.2"),
        (f"image {WORKER}", "mirror.example.com/worker:2.0.1", "worker 2.0.1"),
        (f"image {SIDECAR}", f"@{DIGEST_OLD}", "sidecar sha256:aaaaaaaaaaaa"),
        ("image nginx", "1.25", "nginx 1.25"),
        ("chart", "6.5.0", "chart podinfo 6.5.0"),
        ("spec.values.image.tag", "6.5.0", "spec.values.image.tag 6.5.0"),
        (
            "spec.values.containers.0.image",
            "ghcr.io/acme/app:1.0",
            "spec.values.containers.0.image ghcr.io/acme/app:1.0",
        ),
    ]
    assert got.get("chart") == VersionValue("chart", "6.5.0", "chart podinfo 6.5.0")
    assert got.get("image unknown") is None


def test_images_filter_and_empty_means_every_entry() -> None:
    only_api = read_versions(STAGING, PromotionSpec(images=(API,)))
    assert [v.key for v in only_api.values] == [f"image {API}"]
    every = read_versions(STAGING, PromotionSpec())
    assert [v.key for v in every.values] == [f"image {n}" for n in (API, WORKER, SIDECAR, "nginx")]


def test_tag_that_yaml_would_read_as_a_number_keeps_its_text() -> None:
    text = "images:\n- name: api\n  newTag: 1.10\n"
    assert read_versions(text, PromotionSpec()).get("image api") == VersionValue(
        "image api", "1.10", "api 1.10"
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (PromotionSpec(images=("nope",)), "staging/kustomization.yaml: no image `nope` in `images:`"),
        (PromotionSpec(yaml_paths=("spec.values.image.nope",)), "no `spec.values.image.nope`"),
        (
            PromotionSpec(yaml_paths=("spec.values.containers.7.image",)),
            "no `spec.values.containers.7.image`",
        ),
        (PromotionSpec(yaml_paths=("spec.values.image",)), "is a list or mapping, not a single value"),
    ],
)
def test_missing_keys_name_the_file_and_key(spec: PromotionSpec, message: str) -> None:
    with pytest.raises(UserError, match=r"^staging/kustomization\.yaml: ") as err:
        read_versions(STAGING, spec, filename="staging/kustomization.yaml")
    assert message in err.value.message


def test_missing_chart_and_missing_images_list() -> None:
    with pytest.raises(UserError, match=r"k\.yaml: expected one HelmRelease document, found 0"):
        read_versions("images:\n- name: api\n", PromotionSpec(chart=True), filename="k.yaml")
    release = "kind: HelmRelease\nspec:\n  chart:\n    spec:\n      chart: podinfo\n"
    with pytest.raises(UserError, match=r"the HelmRelease has no `spec\.chart\.spec\.version`"):
        read_versions(release, PromotionSpec(chart=True))
    with pytest.raises(UserError, match=r"no `images:` list"):
        read_versions("resources: []\n", PromotionSpec())


def test_broken_yaml_names_the_line() -> None:
    broken = "images:\n- name: api\n  newTag: [1.4.2\n- name: web\n"
    with pytest.raises(UserError, match=r"^prod/k\.yaml: YAML syntax error at line \d+, column \d+: "):
        read_versions(broken, PromotionSpec(), filename="prod/k.yaml")
    with pytest.raises(UserError, match=r"YAML syntax error at line 3"):
        read_versions("a: 1\nb: 2\n  c: 3\n", PromotionSpec(yaml_paths=("a",)))


def test_duplicate_and_invalid_image_entries() -> None:
    with pytest.raises(UserError, match="lists `api` twice"):
        read_versions("images:\n- name: api\n- name: api\n", PromotionSpec())
    with pytest.raises(UserError, match="invalid newName, newTag or digest"):
        read_versions("images:\n- name: api\n  newTag: a:b\n", PromotionSpec())


# --- applying ------------------------------------------------------------------------------------


def test_apply_changes_only_the_value_tokens() -> None:
    staging = read_versions(STAGING, ALL)
    wanted = with_values(
        staging,
        **{
            f"image {API}": "1.4.3",
            f"image {WORKER}": "mirror.example.com/worker:2.1.0",
            f"image {SIDECAR}": f"@{DIGEST_NEW}",
            "image nginx": "1.27",
            "chart": "6.5.4",
            "spec.values.image.tag": "6.5.4",
            "spec.values.containers.0.image": "ghcr.io/acme/app:1.1",
        },
    )
    after = apply_versions(STAGING, ALL, wanted)
    assert diff_lines(STAGING, after) == [
        '-  newTag: "1.4.2"   # bumped by CI\n',
        '+  newTag: "1.4.3"   # bumped by CI\n',
        "-  newTag: 2.0.1\n",
        "+  newTag: 2.1.0\n",
        f"-  digest: {DIGEST_OLD}\n",
        "-- {name: nginx, newTag: '1.25'}\n",
        f"+  digest: {DIGEST_NEW}\n",
        "+- {name: nginx, newTag: '1.27'}\n",
        "-            version: 6.5.0  # pinned\n",
        "+            version: 6.5.4  # pinned\n",
        '-            tag: "6.5.0"\n',
        '+            tag: "6.5.4"\n',
        "-            image: ghcr.io/acme/app:1.0\n",
        "+            image: ghcr.io/acme/app:1.1\n",
    ]
    assert pairs(read_versions(after, ALL)) == pairs(wanted)
    assert apply_versions(after, ALL, wanted) == after  # idempotent


def test_round_trip_between_environments() -> None:
    prod = STAGING.replace('"1.4.2"', '"1.3.9"').replace("6.5.0  #", "6.4.0  #").replace("'1.25'", "'1.24'")
    staging = read_versions(STAGING, ALL, filename="staging")
    promoted = apply_versions(prod, ALL, staging, filename="prod")
    assert read_versions(promoted, ALL) == staging
    assert promoted == STAGING
    before = read_versions(prod, ALL)
    assert (
        describe_changes(before, staging)
        == "api 1.3.9 → 1.4.2, nginx 1.24 → 1.25, chart podinfo 6.4.0 → 6.5.0"
    )
    assert changed(before, staging)
    assert not changed(staging, read_versions(promoted, ALL))


def test_nothing_to_change_returns_the_same_text() -> None:
    assert apply_versions(STAGING, ALL, read_versions(STAGING, ALL)) is STAGING


@pytest.mark.parametrize(
    ("line", "new", "expected"),
    [
        ("tag: 1.4.2", "1.4.3", "tag: 1.4.3"),
        ("tag: 1.4.2", "1.10", 'tag: "1.10"'),  # plain 1.10 would become the float 1.1
        ("tag: 1.4.2", "on", 'tag: "on"'),  # YAML 1.1 (Helm) reads plain `on` as true
        ("tag: 1.4.2", "0755", 'tag: "0755"'),
        ("tag: 1.4", "1.5", "tag: 1.5"),  # was a float, stays one
        ("tag: '1.4.2'", "it's", "tag: 'it''s'"),
        ('tag: "1.4.2"', 'say "hi"', 'tag: "say \\"hi\\""'),
        ("tag: 1.4.2 # c", "a b", 'tag: "a b" # c'),
        ("tag: ~", "1.0.0", "tag: 1.0.0"),
        ("tag:", "1.0.0", "tag: 1.0.0"),
        ("tag:   # not set yet", "1.0.0", "tag: 1.0.0   # not set yet"),
    ],
)
def test_rendering_keeps_or_adds_quotes_as_needed(line: str, new: str, expected: str) -> None:
    text = f"spec:\n  values:\n    {line}\n    other: x\n"
    spec = PromotionSpec(yaml_paths=("spec.values.tag",))
    after = apply_versions(text, spec, one("spec.values.tag", new))
    assert after == f"spec:\n  values:\n    {expected}\n    other: x\n"
    assert read_versions(after, spec).values[0].value == new


def test_crlf_bom_and_missing_final_newline_survive() -> None:
    text = "\ufeff# c\r\nimages:\r\n  - name: api\r\n    newTag: 1.0.0\r\n  - name: web\r\n    newTag: 2.0.0"
    after = apply_versions(text, PromotionSpec(), one("image web", "2.0.1"))
    assert after == text.replace("2.0.0", "2.0.1")
    added = apply_versions(text, PromotionSpec(), one("image db", "3.0"))
    assert added == text + '\r\n  - name: db\r\n    newTag: "3.0"'


def test_image_missing_from_the_target_is_appended_in_its_layout() -> None:
    target = 'images:\n    -   name: api  # c\n        newTag: "1.0"\n    # trailing comment\nresources: []\n'
    source = (
        "images:\n- name: api\n  newTag: '1.0'\n"
        f"- name: web\n  newName: reg/web\n  newTag: 2.0.0\n  digest: {DIGEST_NEW}\n"
    )
    versions = read_versions(source, PromotionSpec())
    after = apply_versions(target, PromotionSpec(), versions)
    assert diff_lines(target, after) == [
        "+    -   name: web\n",
        "+        newName: reg/web\n",
        '+        newTag: "2.0.0"\n',  # quoted like the file's other newTag
        f"+        digest: {DIGEST_NEW}\n",
    ]
    assert read_versions(after, PromotionSpec()) == VersionSet(
        (read_versions(target, PromotionSpec()).values[0], versions.values[1])
    )
    assert (
        describe_changes(read_versions(target, PromotionSpec()), versions)
        == "web 2.0.0@sha256:bbbbbbbbbbbb (added)"
    )
    # named explicitly in the spec but absent: still appended
    spec = PromotionSpec(images=("web",))
    assert apply_versions(target, spec, read_versions(source, spec)) == after


def test_entry_fields_follow_the_source_added_and_removed() -> None:
    target = "images:\n- name: api\n  newName: reg/api  # mirror\n  newTag: 1.0.0\n- name: web\n  newTag: 1\n"
    after = apply_versions(target, PromotionSpec(), one("image api", f"@{DIGEST_NEW}"))
    assert after == f"images:\n- name: api\n  digest: {DIGEST_NEW}\n- name: web\n  newTag: 1\n"
    back = apply_versions(after, PromotionSpec(), one("image api", "reg/api:1.0.0"))
    assert back == "images:\n- name: api\n  newName: reg/api\n  newTag: 1.0.0\n- name: web\n  newTag: 1\n"


def test_refuses_what_it_cannot_do_in_place() -> None:
    spec = PromotionSpec(yaml_paths=("a.tag",))
    with pytest.raises(UserError, match=r"line 1: can't rewrite `&v 1\.0` in place"):
        apply_versions("a: {tag: &v 1.0}\nb: *v\n", spec, one("a.tag", "2.0"))
    with pytest.raises(UserError, match=r"can't rewrite `!!str 1\.0` in place"):
        apply_versions("a:\n  tag: !!str 1.0\n", spec, one("a.tag", "2.0"))
    with pytest.raises(UserError, match="can't rewrite"):
        apply_versions("a:\n  tag: |\n    1.0\n", spec, one("a.tag", "2.0"))
    with pytest.raises(UserError, match="add image `web` to `images:` by hand"):
        apply_versions("images: [{name: api}]\n", PromotionSpec(), one("image web", "1"))
    with pytest.raises(UserError, match="line 2: remove `newTag` by hand"):
        apply_versions(
            "images:\n- newTag: 1.0\n  name: api\n", PromotionSpec(), one("image api", "@sha256:1")
        )
    with pytest.raises(ValueError, match="not part of this promotion spec"):
        apply_versions(STAGING, PromotionSpec(images=(API,)), one("chart", "1.0"))


@pytest.mark.parametrize(
    ("token", "hint"),
    [("1.1\n    extra: 1", "`spec.values.extra` would change"), ("1.2", "would read back as '1.2'")],
)
def test_a_wrong_edit_is_caught_by_the_reparse(
    monkeypatch: pytest.MonkeyPatch, token: str, hint: str
) -> None:
    # The safety net behind the surgical edits: simulate a rendering bug and nothing is returned.
    monkeypatch.setattr("services.promotion.yaml_text.render", lambda *_: token)
    text = "spec:\n  values:\n    tag: 1.0\n"
    with pytest.raises(UserError, match="refusing to write a change that would touch more than") as err:
        apply_versions(text, PromotionSpec(yaml_paths=("spec.values.tag",)), one("spec.values.tag", "1.1"))
    assert err.value.hint is not None
    assert hint in err.value.hint


def test_describe_changes_wording() -> None:
    def vs(*items: tuple[str, str, str]) -> VersionSet:
        return VersionSet(tuple(VersionValue(*i) for i in items))

    before = vs(
        ("image a", "1.4.2", "api 1.4.2"), ("chart", "6.5.0", "chart podinfo 6.5.0"), ("x", "1", "x 1")
    )
    after = vs(
        ("image a", "1.4.3", "api 1.4.3"), ("chart", "6.5.4", "chart podinfo 6.5.4"), ("x", "1", "x 1")
    )
    assert describe_changes(before, after) == "api 1.4.2 → 1.4.3, chart podinfo 6.5.0 → 6.5.4"
    assert describe_changes(before, before) == ""
    assert not changed(before, before)
    renamed = vs(("image a", "reg/b:1.4.2", "api 1.4.2"))
    assert (
        describe_changes(vs(("image a", "reg/a:1.4.2", "api 1.4.2")), renamed)
        == "api reg/a:1.4.2 → reg/b:1.4.2"
    )
    assert (
        describe_changes(vs(("chart", "1", "chart a 1")), vs(("chart", "2", "chart b 2")))
        == "chart a 1 → b 2"
    )
    assert (
        describe_changes(before, vs()) == "api 1.4.2 (removed), chart podinfo 6.5.0 (removed), x 1 (removed)"
    )


TAGS = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", fullmatch=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(api=TAGS, worker=TAGS, nginx=TAGS, chart=TAGS, tag=TAGS)
def test_any_docker_tag_reads_back_and_only_its_line_changes(
    api: str, worker: str, nginx: str, chart: str, tag: str
) -> None:
    wanted = with_values(
        read_versions(STAGING, ALL),
        **{
            f"image {API}": api,
            f"image {WORKER}": f"mirror.example.com/worker:{worker}",
            "image nginx": nginx,
            "chart": chart,
            "spec.values.image.tag": tag,
        },
    )
    after = apply_versions(STAGING, ALL, wanted)
    assert pairs(read_versions(after, ALL)) == pairs(wanted)
    old, new = STAGING.splitlines(keepends=True), after.splitlines(keepends=True)
    assert len(old) == len(new)
    allowed = {i for i, line in enumerate(old) if "newTag" in line or "version: " in line or "tag: " in line}
    assert all(a == b for i, (a, b) in enumerate(zip(old, new, strict=True)) if i not in allowed)
